//! The two isolation backends behind one interface.
//!
//! A [`Backend`] checks whether the host can give its isolation level, and launches the agent
//! as PID 1 of a new sandbox. It hands back a [`Transport`] (the byte stream to the agent) and an
//! [`Instance`] (what must be torn down). Everything above, the protocol and the containers, is
//! the same for both.

mod micro_vm;
mod namespaces;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

pub use micro_vm::{GuestConfig, MicroVmBackend};
pub use namespaces::NamespaceBackend;
pub use transport::{Transport, UnixTransport, VsockTransport};

use crate::{Isolation, SandboxConfig, SandboxError};

/// One isolation level.
pub trait Backend: Send + Sync {
    /// The level this backend provides.
    fn isolation(&self) -> Isolation;

    /// Whether this host can run it; the error says what is missing.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Refused`] with the reason.
    fn check_host(&self) -> Result<(), SandboxError>;

    /// Starts a sandbox running the agent.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Refused`] when the host cannot run it, or the failure of a launch step.
    fn launch(&self, config: &SandboxConfig) -> Result<Launched, SandboxError>;
}

/// A sandbox that is running its agent.
pub struct Launched {
    /// The byte stream to the agent.
    pub transport: Box<dyn Transport>,
    /// The sandbox itself.
    pub instance: Box<dyn Instance>,
}

/// What a backend tears down when a sandbox ends.
pub trait Instance: Send {
    /// The sandbox's network namespace, for the host side of its network.
    fn netns(&self) -> Option<PathBuf>;

    /// Waits up to `timeout` for the agent to end after being asked to, kills it otherwise,
    /// and releases everything the backend set up (processes, cgroup).
    ///
    /// # Errors
    ///
    /// Fails when something could not be released.
    fn terminate(&mut self, timeout: Duration) -> Result<(), SandboxError>;
}
