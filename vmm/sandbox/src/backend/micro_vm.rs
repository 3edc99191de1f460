//! The micro-VM backend: the guest image (kernel plus the initramfs holding the agent as
//! `/init`) boots in podvisor's VMM, and the agent is reached over vsock.
//!
//! Everything but the transport is in place: the guest image is built by [`crate::initramfs`],
//! the VM is started through `podvisor-vmm`, the agent listens on vsock port
//! [`podvisor_agent::runtime::pid1::VSOCK_PORT`] and loads the virtio modules named on the kernel
//! command line. The VMM gains virtio-vsock in a later issue; until then
//! [`MicroVmBackend::check_host`](super::Backend::check_host) refuses with that reason, before any
//! VM is started.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use podvisor_agent::runtime::pid1::VSOCK_PORT;
use podvisor_vmm::{DEFAULT_KVM_PATH, SerialSink, Vm, VmConfig};

use super::{Backend, Instance, Launched, VsockTransport};
use crate::{Isolation, SandboxConfig, SandboxError};

/// The guest context id of a sandbox's VM.
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

impl Backend for MicroVmBackend {
    fn isolation(&self) -> Isolation {
        Isolation::MicroVm
    }

    fn check_host(&self) -> Result<(), SandboxError> {
        let probe = podvisor_vmm::probe(Path::new(DEFAULT_KVM_PATH))
            .map_err(|e| refused(format!("no usable KVM: {e}")))?;
        if !probe.is_hardware_assisted() {
            return Err(refused(format!(
                "KVM here is {}, not hardware-assisted ({})",
                probe.mode,
                probe.mode.linux_guest_notes()
            )));
        }
        for (what, p) in [
            ("kernel", &self.guest.kernel),
            ("initramfs", &self.guest.initramfs),
        ] {
            if !p.is_file() {
                return Err(refused(format!("guest {what} {} is missing", p.display())));
            }
        }
        if !VsockTransport::available() {
            return Err(refused(
                "the VMM has no virtio-vsock device yet, so the agent in the guest cannot be reached",
            ));
        }
        Ok(())
    }

    fn launch(&self, config: &SandboxConfig) -> Result<Launched, SandboxError> {
        self.check_host()?;
        let console = config.sandbox_dir().join("console.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&console)
            .map_err(|e| SandboxError::host("opening the guest console log", &console, e))?;
        // TODO: hand the container roots to the guest (virtio-blk or virtio-fs) — when the VMM
        // gains those devices; until then only the vsock transport stands between this and a
        // working backend, and check_host refuses first.
        let vm_config = VmConfig::new(&self.guest.kernel)
            .initrd(&self.guest.initramfs)
            .cmdline(self.guest.cmdline())
            .vcpus(u32::from(self.guest.vcpus))
            .memory_mib(u64::from(self.guest.memory_mib))
            .serial(SerialSink::File(Arc::new(file)));
        let vm = Vm::start(vm_config).map_err(|e| refused(format!("the VM did not start: {e}")))?;
        Ok(Launched {
            transport: Box::new(VsockTransport {
                cid: GUEST_CID,
                port: VSOCK_PORT,
            }),
            instance: Box::new(MicroVmInstance { vm: Some(vm) }),
        })
    }
}

/// A running micro-VM.
struct MicroVmInstance {
    vm: Option<Vm>,
}

impl Instance for MicroVmInstance {
    fn netns(&self) -> Option<PathBuf> {
        // TODO: a tap device on the bridge — when the VMM gains virtio-net.
        None
    }

    fn terminate(&mut self, timeout: Duration) -> Result<(), SandboxError> {
        let Some(vm) = self.vm.take() else {
            return Ok(());
        };
        // The agent powers the VM off when asked to shut down; the VMM stops a VM that has not
        // done so when the timeout passes.
        match vm.wait(Some(timeout)) {
            Ok(reason) => {
                tracing::debug!(%reason, "micro-VM ended");
                Ok(())
            }
            Err(e) => Err(SandboxError::Refused {
                isolation: Isolation::MicroVm,
                reason: format!("the VM failed while stopping: {e}"),
            }),
        }
    }
}
