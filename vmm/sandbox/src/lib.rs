//! podvisor's pod sandboxes.
//!
//! A sandbox is where a pod's containers run. It offers one interface over two isolation levels,
//! chosen per pod like Kubernetes' RuntimeClass: a micro-VM of `podvisor-vmm`
//! ([`Isolation::MicroVm`]), or Linux namespaces and cgroups on the host
//! ([`Isolation::Namespaces`]). Both run the podvisor agent as PID 1 and speak the same protocol
//! to it; only the byte stream differs (vsock or a Unix socket).
//!
//! ```no_run
//! use podvisor_sandbox::{ContainerConfig, ImageSource, Isolation, Sandbox, SandboxConfig};
//!
//! # fn main() -> Result<(), podvisor_sandbox::SandboxError> {
//! let config = SandboxConfig::new("web-0", Isolation::Namespaces, "/var/lib/podvisor".into(),
//!     "/usr/libexec/podvisor-agent".into());
//! let sandbox = Sandbox::create(config)?;
//! let mut web = ContainerConfig::new("web", ImageSource::Rootfs("/srv/rootfs".into()));
//! web.process.args = vec!["busybox".into(), "httpd".into(), "-f".into()];
//! sandbox.create_container(&web)?;
//! sandbox.start("web")?;
//! sandbox.destroy()?;
//! # Ok(())
//! # }
//! ```

pub mod backend;
mod client;
mod error;
pub mod image;
pub mod initramfs;
pub mod logs;
pub mod network;
mod sandbox;

pub use backend::{Backend, GuestConfig, MicroVmBackend, NamespaceBackend};
pub use client::{AgentClient, ProcessEvent};
pub use error::SandboxError;
pub use image::ImageSource;
pub use logs::{LogFollower, LogPolicy};
pub use network::NetworkConfig;
pub use podvisor_agent::cgroup::Cgroup;
pub use podvisor_agent::protocol::{
    ContainerStats, ExitStatus, Limits, ProcessRef, ProcessSpec, Stream,
};
pub use sandbox::{ContainerConfig, Sandbox, SandboxConfig, valid_name};

use std::fmt;

/// The isolation level of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// A micro-VM of podvisor's VMM; the default where KVM is hardware-assisted.
    MicroVm,
    /// Linux namespaces and cgroups on the host.
    Namespaces,
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MicroVm => "micro-VM",
            Self::Namespaces => "namespace",
        })
    }
}
