//! The micro-VM backend: the guest image (kernel plus the initramfs holding the agent as
//! `/init`) boots in podvisor's VMM, and the agent is reached over vsock.
//!
//! Everything but the transport is in place: the guest image is built by [`crate::initramfs`],
//! the agent listens on vsock port [`podvisor_agent::runtime::pid1::VSOCK_PORT`] and loads the
//! virtio modules named on the kernel command line. The VMM gains virtio-vsock in a later
//! issue; until then [`MicroVmBackend::launch`] refuses with that reason.

use std::fs;
use std::path::PathBuf;

use super::{Backend, Launched, Transport, VsockTransport};
use crate::{Isolation, SandboxConfig, SandboxError};

/// The guest context id the first micro-VM's agent listens on.
const GUEST_CID: u32 = 3;

/// What a micro-VM boots.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// The guest kernel (bzImage or vmlinux).
    pub kernel: PathBuf,
    /// The initramfs built by [`crate::initramfs::build`].
    pub initramfs: PathBuf,
    /// Kernel modules the agent loads, in order (file names under `/lib/modules`).
    pub modules: Vec<String>,
    /// vCPUs.
    pub vcpus: u8,
    /// Guest memory in MiB.
    pub memory_mib: u32,
}

impl GuestConfig {
    /// The kernel command line for this guest.
    pub fn cmdline(&self) -> String {
        let mut c = String::from("console=ttyS0 reboot=k panic=-1 quiet rdinit=/init");
        if !self.modules.is_empty() {
            c.push_str(" podvisor.modules=");
            c.push_str(&self.modules.join(","));
        }
        c
    }
}

/// Micro-VMs of podvisor's VMM.
#[derive(Debug, Clone)]
pub struct MicroVmBackend {
    guest: GuestConfig,
}

impl MicroVmBackend {
    /// A backend booting `guest`.
    pub fn new(guest: GuestConfig) -> Self {
        Self { guest }
    }
}

fn refused(reason: impl Into<String>) -> SandboxError {
    SandboxError::Refused {
        isolation: Isolation::MicroVm,
        reason: reason.into(),
    }
}

/// Whether KVM here runs guests with hardware virtualization (VT-x or AMD-V).
fn hardware_kvm() -> Result<(), String> {
    if fs::metadata("/dev/kvm").is_err() {
        return Err("/dev/kvm is missing".into());
    }
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    if !flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
        return Err("KVM is not hardware-assisted: the CPU shows neither vmx nor svm".into());
    }
    Ok(())
}

impl Backend for MicroVmBackend {
    fn isolation(&self) -> Isolation {
        Isolation::MicroVm
    }

    fn check_host(&self) -> Result<(), SandboxError> {
        // TODO: ask podvisor-vmm's host probe — once the VMM crate exports it.
        hardware_kvm().map_err(refused)?;
        for (what, p) in [
            ("kernel", &self.guest.kernel),
            ("initramfs", &self.guest.initramfs),
        ] {
            if !p.is_file() {
                return Err(refused(format!("guest {what} {} is missing", p.display())));
            }
        }
        Ok(())
    }

    fn launch(&self, _config: &SandboxConfig) -> Result<Launched, SandboxError> {
        self.check_host()?;
        // The transport is the one missing piece: without it the agent cannot be reached, so
        // booting a guest would only leave a VM nobody can drive.
        let mut transport = VsockTransport {
            cid: GUEST_CID,
            port: podvisor_agent::runtime::pid1::VSOCK_PORT,
        };
        match transport.open() {
            Ok(_) => unreachable!("vsock transport is not implemented"),
            Err(e) => Err(refused(e.to_string())),
        }
    }
}
