//! podvisor's virtual machine monitor.
//!
//! This crate owns one KVM virtual machine per [`Vm`]: its guest memory, the Linux boot path
//! (bzImage through the 64-bit boot protocol, ELF vmlinux through PVH), one thread per vCPU and the
//! legacy devices a Linux guest expects. It knows nothing of clusters and can be embedded alone.
//!
//! - [`config`]: [`VmConfig`] and the serial sink;
//! - [`boot`], [`memory`], [`acpi`], [`cpu`]: what the guest finds at entry;
//! - [`devices`]: the UART, the i8042, the ACPI power registers and the buses;
//! - [`vm`]: starting, waiting for and stopping a VM;
//! - [`mod@probe`]: what kind of KVM the host has;
//! - [`metrics`]: counters of starts and exits.
//!
//! ```no_run
//! use std::time::Duration;
//! use podvisor_vmm::{SerialSink, Vm, VmConfig};
//!
//! let (sink, console) = SerialSink::buffer();
//! let vm = Vm::start(VmConfig::new("vmlinux").cmdline("console=ttyS0").serial(sink))?;
//! let stop = vm.stop_handle();
//! if console.wait_for("Linux version", Duration::from_secs(60)) {
//!     stop.stop();
//! }
//! println!("{}", vm.wait(None)?);
//! # Ok::<(), podvisor_vmm::VmError>(())
//! ```

pub mod acpi;
pub mod boot;
pub mod config;
pub mod cpu;
pub mod devices;
mod exit;
pub mod guest;
pub mod kvm;
pub mod memory;
pub mod metrics;
pub mod probe;
mod vcpu;
pub mod vm;

pub use acpi::{AcpiDevice, AcpiResource};
pub use boot::{BootError, EntryPoint, KernelFormat};
pub use config::{BootProtocol, ConfigError, SerialBuffer, SerialSink, VmConfig};
pub use cpu::{CpuidFilter, CpuidRegister};
pub use devices::{BusDevice, BusRange};
pub use exit::ExitReason;
pub use kvm::{DEFAULT_KVM_PATH, KvmError};
pub use metrics::{VmmCounters, counters};
pub use probe::{HostProbe, KvmMode, probe};
pub use vcpu::kick_signal;
pub use vm::{ApStart, StopHandle, Vm, VmError};
