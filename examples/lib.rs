//! Examples of embedding and running podvisor; each example is a target of this package.
