//! The host probe: what kind of KVM this host offers and what that means for Linux guests.
//!
//! podvisor runs on two kinds of KVM. Hardware-assisted KVM (Intel VMX or AMD SVM) runs guest
//! kernels natively. PVM (`kvm_pvm`) is a software-paged KVM that works without hardware
//! virtualization, for example inside a cloud VM: guest user code runs natively, but guest
//! ring-0 code is emulated one instruction at a time, and a few ring-0 instructions
//! (cmpxchg16b, xsave/xrstor, int3) stop the guest. Tests and tools ask [`probe`] which one they
//! have and skip, with a reason, what cannot work.

use std::fmt;
use std::fs;
use std::path::Path;

use crate::kvm::{KvmError, open_kvm};

/// How this host's KVM runs guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmMode {
    /// Hardware-assisted virtualization through Intel VMX.
    Vmx,
    /// Hardware-assisted virtualization through AMD SVM.
    Svm,
    /// PVM, the software-paged KVM: ring 0 of the guest is emulated.
    Pvm,
    /// KVM opened, but neither VMX/SVM nor PVM could be identified.
    Unknown,
}

impl KvmMode {
    /// Whether guest kernels run natively (VMX or SVM).
    pub fn is_hardware_assisted(self) -> bool {
        matches!(self, KvmMode::Vmx | KvmMode::Svm)
    }

    /// What this mode means for a stock Linux guest, in one paragraph.
    pub fn linux_guest_notes(self) -> &'static str {
        match self {
            KvmMode::Vmx | KvmMode::Svm => {
                "hardware-assisted: a stock Linux guest boots to userspace in well under a second"
            }
            KvmMode::Pvm => {
                "software-paged (PVM): guest ring-0 code is emulated one instruction at a time \
                 (about 5 us each), so a stock kernel prints its banner after about 25 s and \
                 stops at its int3 self-test; cmpxchg16b, xsave/xrstor and int3 in ring 0 stop \
                 the guest. Guest user code runs natively. Full boots need hardware-assisted KVM"
            }
            KvmMode::Unknown => "unknown KVM flavour: Linux guests may or may not boot",
        }
    }
}

impl fmt::Display for KvmMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvmMode::Vmx => "hardware-assisted (Intel VMX)",
            KvmMode::Svm => "hardware-assisted (AMD SVM)",
            KvmMode::Pvm => "software-paged (PVM)",
            KvmMode::Unknown => "unknown",
        })
    }
}

/// What [`probe`] found out about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProbe {
    /// How KVM runs guests here.
    pub mode: KvmMode,
    /// The most vCPUs KVM allows in one VM (`KVM_CAP_MAX_VCPUS`).
    pub max_vcpus: usize,
    /// The vCPU count KVM recommends (`KVM_CAP_NR_VCPUS`).
    pub recommended_vcpus: usize,
}

impl HostProbe {
    /// Whether guest kernels run natively here.
    pub fn is_hardware_assisted(&self) -> bool {
        self.mode.is_hardware_assisted()
    }
}

impl fmt::Display for HostProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kvm: {}, max vCPUs {}, recommended {}\nlinux guests: {}",
            self.mode,
            self.max_vcpus,
            self.recommended_vcpus,
            self.mode.linux_guest_notes()
        )
    }
}

/// Probes the KVM device at `kvm_path` (usually [`crate::DEFAULT_KVM_PATH`]).
///
/// PVM is recognised by its module (`/sys/module/kvm_pvm`); hardware assistance by the
/// `kvm_intel`/`kvm_amd` modules together with the `vmx`/`svm` CPU flags.
///
/// # Errors
///
/// The [`KvmError`] of opening the device when there is no usable KVM at all.
pub fn probe(kvm_path: &Path) -> Result<HostProbe, KvmError> {
    let kvm = open_kvm(kvm_path)?;
    let flags = cpu_flags();
    let module = |name: &str| Path::new("/sys/module").join(name).exists();

    let mode = if module("kvm_pvm") {
        KvmMode::Pvm
    } else if module("kvm_intel") && flags.iter().any(|f| f == "vmx") {
        KvmMode::Vmx
    } else if module("kvm_amd") && flags.iter().any(|f| f == "svm") {
        KvmMode::Svm
    } else {
        KvmMode::Unknown
    };
    Ok(HostProbe {
        mode,
        max_vcpus: kvm.get_max_vcpus(),
        recommended_vcpus: kvm.get_nr_vcpus(),
    })
}

/// The flags of the first CPU in `/proc/cpuinfo`, empty when it cannot be read.
fn cpu_flags() -> Vec<String> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find(|line| line.starts_with("flags"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, flags)| flags.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}
