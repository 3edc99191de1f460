//! The micro-VM guest image.
