//! The podvisor agent and its protocol.
//!
//! The agent runs as PID 1 of every sandbox and starts the pod's containers on request. The
//! [`protocol`] module is shared by the agent and by the host side that drives it; the other
//! modules are the agent itself, used by its binary.

pub mod cgroup;
pub mod protocol;

#[doc(hidden)]
pub mod runtime;
