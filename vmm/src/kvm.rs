//! Opening `/dev/kvm` and the errors of talking to it.
//!
//! Every KVM ioctl the VMM issues fails into a [`KvmError`] that names the call, so an error a
//! user sees says which step of building the VM went wrong.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};

use kvm_ioctls::{Cap, Kvm};

/// The device node podvisor opens unless told otherwise.
pub const DEFAULT_KVM_PATH: &str = "/dev/kvm";

/// Errors of the KVM device and its ioctls.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    /// The KVM device node does not exist (no KVM module loaded, or not in this container).
    #[error("no KVM device at {}: load kvm (kvm_intel, kvm_amd or kvm_pvm) or pass it in", path.display())]
    NoDevice {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The KVM device exists but this process may not open it read-write.
    #[error("no permission to open {} read-write: join its group (usually kvm) or run as root", path.display())]
    NoPermission {
        /// The path that was tried.
        path: PathBuf,
    },
    /// Opening the KVM device failed for another reason.
    #[error("cannot open KVM device {}", path.display())]
    Open {
        /// The path that was tried.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The device speaks another KVM API version than the stable one (12).
    #[error("KVM device reports API version {0}, podvisor needs 12")]
    ApiVersion(i32),
    /// A capability the VMM depends on is missing.
    #[error("KVM lacks the {0} capability")]
    MissingCapability(&'static str),
    /// An ioctl failed.
    #[error("KVM {op} failed")]
    Ioctl {
        /// The operation, for example `KVM_CREATE_VM`.
        op: &'static str,
        /// The errno it returned.
        #[source]
        source: kvm_ioctls::Error,
    },
}

impl KvmError {
    /// Wraps the errno of a failed ioctl with the name of the call.
    pub(crate) fn ioctl(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> KvmError {
        move |source| KvmError::Ioctl { op, source }
    }
}

/// Opens the KVM device at `path` and checks the API version and the capabilities the VMM needs.
///
/// # Errors
///
/// [`KvmError::NoDevice`] or [`KvmError::NoPermission`] when the node is missing or closed to
/// this process, [`KvmError::ApiVersion`] or [`KvmError::MissingCapability`] when the kernel's
/// KVM is too old.
pub fn open_kvm(path: &Path) -> Result<Kvm, KvmError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => KvmError::NoDevice {
                path: path.to_owned(),
            },
            io::ErrorKind::PermissionDenied => KvmError::NoPermission {
                path: path.to_owned(),
            },
            _ => KvmError::Open {
                path: path.to_owned(),
                source,
            },
        })?;

    // SAFETY: the fd was just opened by us, is owned by nothing else, and `Kvm` takes over
    // closing it. A file that is not a KVM device fails the version check below.
    let kvm = unsafe { Kvm::from_raw_fd(file.into_raw_fd()) };
    let version = kvm.get_api_version();
    if version != 12 {
        return Err(KvmError::ApiVersion(version));
    }
    for (cap, name) in [
        (Cap::Irqchip, "KVM_CAP_IRQCHIP"),
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
        (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
        (Cap::Irqfd, "KVM_CAP_IRQFD"),
        (Cap::Pit2, "KVM_CAP_PIT2"),
        (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(KvmError::MissingCapability(name));
        }
    }
    Ok(kvm)
}
