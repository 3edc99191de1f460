//! VirtualMachines on this node, driven to their power state through podvisor's VMM, as
//! VMware's VM Operator drives vSphere VMs.
//!
//! PoweredOn boots the VM from its image (kernel, initrd, command line), with its console in
//! `<state_dir>/vms/<namespace>_<name>/console.log`; PoweredOff stops it. When the guest ends
//! on its own, the status shows PoweredOff and the typed exit reason, and the VM is not started
//! again until its spec changes. A host whose KVM cannot boot a Linux guest (software-paged
//! KVM) refuses Linux kernels with a condition that says why, and nothing pretends to run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use podvisor_vmm::{SerialSink, StopHandle, Vm, VmConfig};

use super::NodeAgentConfig;
use crate::objects::{Condition, ConditionStatus, Kind, Object, PowerState, VirtualMachine};
use crate::registry::Registry;

/// A change of a VM's state, for the node agent to write.
#[derive(Debug, Clone)]
pub struct VmReport {
    namespace: String,
    name: String,
    uid: String,
    power_state: PowerState,
    exit_reason: Option<String>,
    runnable: (bool, String, String),
    generation: u64,
}

/// One VM's runner.
pub struct VmRunner {
    uid: String,
    running: Option<(StopHandle, JoinHandle<()>)>,
    /// The generation last acted on: a VM that ended is not started again for the same one.
    acted_on: Option<u64>,
    reports: Sender<VmReport>,
}

impl VmRunner {
    /// A runner for `vm`, which starts nothing yet.
    pub fn new(vm: &VirtualMachine, reports: Sender<VmReport>) -> Self {
        VmRunner {
            uid: vm.metadata.uid.clone(),
            running: None,
            acted_on: None,
            reports,
        }
    }

    fn is_running(&self) -> bool {
        self.running.as_ref().is_some_and(|(_, t)| !t.is_finished())
    }

    /// Drives the VM toward `vm.spec.powerState`.
    pub fn reconcile(&mut self, vm: &VirtualMachine, config: &NodeAgentConfig) {
        let generation = vm.metadata.generation;
        match vm.spec.power_state {
            PowerState::PoweredOn if !self.is_running() && self.acted_on != Some(generation) => {
                self.acted_on = Some(generation);
                self.power_on(vm, config);
            }
            PowerState::PoweredOff if self.is_running() => self.power_off(),
            PowerState::PoweredOff if vm.status.power_state != PowerState::PoweredOff => {
                self.report(
                    vm,
                    PowerState::PoweredOff,
                    None,
                    (true, "PoweredOff".into(), String::new()),
                );
            }
            _ => {}
        }
    }

    /// Stops the VM, if it runs, and waits for it to end.
    pub fn power_off(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.stop();
            let _ = thread.join();
        }
    }

    fn power_on(&mut self, vm: &VirtualMachine, config: &NodeAgentConfig) {
        let kernel = resolve(&config.kernel_dir, &vm.spec.image.kernel);
        let hardware = podvisor_vmm::probe(Path::new(podvisor_vmm::DEFAULT_KVM_PATH)).map(|p| {
            (
                p.is_hardware_assisted(),
                p.mode.linux_guest_notes().to_string(),
            )
        });
        if let Ok((false, notes)) = &hardware
            && is_linux_kernel(&kernel)
        {
            let message = format!("this host cannot run a Linux guest: {notes}");
            tracing::info!(vm = %vm.metadata.name, "refusing a Linux guest on software-paged KVM");
            self.report(
                vm,
                PowerState::PoweredOff,
                None,
                (false, "SoftwarePagedKVM".into(), message),
            );
            return;
        }
        let dir = config
            .state_dir
            .join("vms")
            .join(format!("{}_{}", vm.metadata.namespace, vm.metadata.name));
        let console =
            std::fs::create_dir_all(&dir).and_then(|()| File::create(dir.join("console.log")));
        let serial = match console {
            Ok(f) => SerialSink::File(Arc::new(f)),
            Err(_) => SerialSink::Discard,
        };
        let mut vm_config = VmConfig::new(kernel)
            .vcpus(vm.spec.class.vcpus)
            .memory_mib(vm.spec.class.memory_mib)
            .serial(serial);
        if !vm.spec.image.cmdline.is_empty() {
            vm_config = vm_config.cmdline(vm.spec.image.cmdline.clone());
        }
        if !vm.spec.image.initrd.is_empty() {
            vm_config = vm_config.initrd(resolve(&config.kernel_dir, &vm.spec.image.initrd));
        }
        match Vm::start(vm_config) {
            Ok(running) => {
                tracing::info!(vm = %vm.metadata.name, "powered on");
                let stop = running.stop_handle();
                self.report(
                    vm,
                    PowerState::PoweredOn,
                    None,
                    (true, "PoweredOn".into(), String::new()),
                );
                let template = self.template(vm);
                let tx = self.reports.clone();
                let waiter = std::thread::Builder::new()
                    .name(format!("vm-{}", vm.metadata.name))
                    .spawn(move || {
                        let reason = match running.wait(None) {
                            Ok(r) => r.to_string(),
                            Err(e) => format!("VMM error: {e}"),
                        };
                        drop(running);
                        let _ = tx.send(VmReport {
                            power_state: PowerState::PoweredOff,
                            exit_reason: Some(reason),
                            runnable: (true, "GuestStopped".into(), String::new()),
                            ..template
                        });
                    });
                match waiter {
                    Ok(t) => self.running = Some((stop, t)),
                    Err(_) => stop.stop(),
                }
            }
            Err(e) => {
                let message = super::pod_worker::error_chain(&e);
                tracing::warn!(vm = %vm.metadata.name, error = %message, "cannot power on");
                self.report(
                    vm,
                    PowerState::PoweredOff,
                    Some(message.clone()),
                    (false, "PowerOnFailed".into(), message),
                );
            }
        }
    }

    fn template(&self, vm: &VirtualMachine) -> VmReport {
        VmReport {
            namespace: vm.metadata.namespace.clone(),
            name: vm.metadata.name.clone(),
            uid: self.uid.clone(),
            power_state: PowerState::PoweredOff,
            exit_reason: None,
            runnable: (true, String::new(), String::new()),
            generation: vm.metadata.generation,
        }
    }

    fn report(
        &self,
        vm: &VirtualMachine,
        power_state: PowerState,
        exit_reason: Option<String>,
        runnable: (bool, String, String),
    ) {
        let _ = self.reports.send(VmReport {
            power_state,
            exit_reason,
            runnable,
            ..self.template(vm)
        });
    }
}

impl Drop for VmRunner {
    fn drop(&mut self) {
        self.power_off();
    }
}

/// Writes a VM report to the VM's status.
pub fn write_report(registry: &Registry, report: &VmReport) {
    let result = registry.modify(
        Kind::VirtualMachine,
        &report.namespace,
        &report.name,
        |obj| {
            let Object::VirtualMachine(v) = obj else {
                return false;
            };
            if v.metadata.uid != report.uid {
                return false;
            }
            let before = v.status.clone();
            v.status.power_state = report.power_state;
            if let Some(reason) = &report.exit_reason {
                v.status.last_exit_reason = reason.clone();
            }
            let (ok, reason, message) = &report.runnable;
            Condition::set(
                &mut v.status.conditions,
                Condition {
                    type_: "Runnable".into(),
                    status: if *ok {
                        ConditionStatus::True
                    } else {
                        ConditionStatus::False
                    },
                    reason: reason.clone(),
                    message: message.clone(),
                    observed_generation: report.generation,
                    last_transition_time: None,
                },
            );
            before != v.status
        },
    );
    if let Err(e) = result {
        tracing::debug!(vm = %report.name, error = %e, "cannot write VM status");
    }
}

fn resolve(dir: &Path, name: &str) -> PathBuf {
    if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}

/// Whether `path` holds a Linux kernel: a bzImage (`HdrS` boot protocol magic) or an ELF
/// vmlinux that carries the kernel's version banner.
pub fn is_linux_kernel(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    if data.get(0x202..0x206) == Some(b"HdrS") {
        return true;
    }
    data.starts_with(b"\x7fELF") && data.windows(14).any(|w| w == b"Linux version ")
}
