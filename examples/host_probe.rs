//! Prints what kind of KVM this host has and what that means for Linux guests.
//!
//! Exit status: 0 when KVM is hardware-assisted (VMX or SVM), 1 when it is software-paged
//! (PVM) or unknown, 2 when there is no usable KVM. `make test-hw` runs the full-boot tests
//! only on status 0.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    match podvisor_vmm::probe(Path::new(podvisor_vmm::DEFAULT_KVM_PATH)) {
        Ok(probe) => {
            println!("{probe}");
            if probe.is_hardware_assisted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            println!("kvm: none ({error})");
            ExitCode::from(2)
        }
    }
}
