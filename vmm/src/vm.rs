//! [`Vm`]: one KVM virtual machine, from start to the last thread joined.
//!
//! [`Vm::start`] checks the configuration, creates the VM with its in-kernel IRQ chip and PIT,
//! loads the kernel, wires the devices and spawns one thread per vCPU, then returns. The VM
//! then runs until the guest powers off, resets or faults, or the host stops it through a
//! [`StopHandle`]; [`Vm::wait`] reports which as an [`ExitReason`]. Dropping a `Vm` stops it
//! if it still runs and releases every thread, fd and mapping before returning.

use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::boot::{self, BootError};
use crate::config::{ConfigError, VmConfig};
use crate::cpu::configure_vcpu;
use crate::devices::i8042::{I8042, I8042_PORT};
use crate::devices::power::{POWER_PORT, PowerDevice};
use crate::devices::serial::{COM1_IRQ, COM1_PORT, SerialDevice};
use crate::devices::{Bus, BusError, BusRange, lock};
use crate::exit::{ExitLatch, ExitReason};
use crate::kvm::{KvmError, open_kvm};
use crate::memory::{MIB, create_guest_memory};
use crate::vcpu::{VcpuContext, install_kick_handler, run_vcpu};

/// Where KVM puts the TSS pages it needs on Intel hosts: the top of the MMIO hole.
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;

/// Errors of starting or running a VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The configuration does not describe a VM this host can run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// KVM is missing, closed to us, or refused a call.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// The kernel or initrd could not be loaded.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// Guest memory could not be mapped.
    #[error("cannot map {memory_mib} MiB of guest memory")]
    GuestMemory {
        /// The size asked for.
        memory_mib: u64,
        /// What mmap said.
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
    /// A device could not be placed on its bus.
    #[error("cannot place a device")]
    Bus(#[from] BusError),
    /// The vCPU kick signal handler could not be installed.
    #[error("cannot install the vCPU kick signal handler")]
    Signal(#[source] vmm_sys_util::errno::Error),
    /// An eventfd could not be created.
    #[error("cannot create an eventfd")]
    EventFd(#[source] io::Error),
    /// A vCPU thread could not be spawned.
    #[error("cannot spawn the thread of vCPU {vcpu}")]
    Thread {
        /// The vCPU.
        vcpu: u32,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A vCPU thread panicked.
    #[error("the thread of vCPU {0} panicked")]
    VcpuPanicked(u32),
}

/// How the vCPUs other than the first start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApStart {
    /// They wait for INIT and SIPI from the boot vCPU, as on real hardware (what Linux wants).
    #[default]
    InitSipi,
    /// They start at the entry point with the boot vCPU, each with its own APIC id.
    AtEntry,
}

/// Stops a VM from any thread. Cheap to clone.
#[derive(Clone)]
pub struct StopHandle {
    latch: Arc<ExitLatch>,
}

impl StopHandle {
    /// Ends the VM with [`ExitReason::HostStop`], unless it already ended. Every vCPU leaves
    /// the guest within milliseconds; the call does not wait for that.
    pub fn stop(&self) {
        self.latch.finish(ExitReason::HostStop);
    }

    /// Why the VM ended, if it did.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.latch.current()
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("exit_reason", &self.latch.current())
            .finish()
    }
}

/// A running (or ended) virtual machine.
pub struct Vm {
    latch: Arc<ExitLatch>,
    threads: Mutex<Vec<(u32, JoinHandle<()>)>>,
    serial: Arc<Mutex<SerialDevice>>,
    memory_mib: u64,
    // Dropped in this order after the threads are joined: the fds, then guest memory.
    vm_fd: VmFd,
    _serial_irq: EventFd,
    _kvm: Kvm,
    memory: GuestMemoryMmap,
}

impl Vm {
    /// Creates the VM described by `config` and starts its vCPUs.
    ///
    /// Returns once every vCPU thread runs.
    ///
    /// # Errors
    ///
    /// [`VmError::Kvm`] when `/dev/kvm` is missing or closed to this process,
    /// [`VmError::Config`] for vCPU counts, memory sizes or a command line out of range,
    /// [`VmError::Boot`] when the kernel or initrd is missing, unreadable or not one. Nothing
    /// is left behind on error: no thread, fd or mapping.
    pub fn start(config: VmConfig) -> Result<Vm, VmError> {
        match Vm::build(config) {
            Ok(vm) => {
                crate::metrics::vm_started();
                Ok(vm)
            }
            Err(error) => {
                crate::metrics::start_failed();
                tracing::debug!(%error, "vm start failed");
                Err(error)
            }
        }
    }

    fn build(config: VmConfig) -> Result<Vm, VmError> {
        let kvm = open_kvm(&config.kvm_path)?;
        config.validate(u32::try_from(kvm.get_max_vcpus()).unwrap_or(u32::MAX))?;
        install_kick_handler().map_err(VmError::Signal)?;

        let vm_fd = kvm.create_vm().map_err(KvmError::ioctl("KVM_CREATE_VM"))?;
        let mem_size = config.memory_mib * MIB;
        let memory = create_guest_memory(mem_size).map_err(|source| VmError::GuestMemory {
            memory_mib: config.memory_mib,
            source,
        })?;
        register_memory(&vm_fd, &memory)?;

        if let Err(error) = vm_fd.set_tss_address(KVM_TSS_ADDRESS) {
            // Only Intel VMX needs it; other KVMs may refuse.
            tracing::debug!(%error, "KVM_SET_TSS_ADDR refused");
        }
        vm_fd
            .create_irq_chip()
            .map_err(KvmError::ioctl("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm_fd
            .create_pit2(pit)
            .map_err(KvmError::ioctl("KVM_CREATE_PIT2"))?;

        let entry = boot::load(&config, &memory)?;

        let mut cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(KvmError::ioctl("KVM_GET_SUPPORTED_CPUID"))?;
        config.cpuid.apply(&mut cpuid);

        let latch = Arc::new(ExitLatch::new().closing_console(&config.serial));
        let serial_irq = EventFd::new(EFD_NONBLOCK).map_err(VmError::EventFd)?;
        vm_fd
            .register_irqfd(&serial_irq, COM1_IRQ)
            .map_err(KvmError::ioctl("KVM_IRQFD"))?;
        let serial = Arc::new(Mutex::new(SerialDevice::new(
            serial_irq.try_clone().map_err(VmError::EventFd)?,
            config.serial.clone(),
        )));

        let mut pio = Bus::default();
        pio.insert(BusRange::new(COM1_PORT.into(), 8), serial.clone())?;
        pio.insert(
            BusRange::new(I8042_PORT.into(), 5),
            Arc::new(Mutex::new(I8042::new(latch.clone()))),
        )?;
        pio.insert(
            BusRange::new(POWER_PORT.into(), 3),
            Arc::new(Mutex::new(PowerDevice::new(latch.clone()))),
        )?;
        let mut mmio = Bus::default();
        for extra in &config.pio_devices {
            pio.insert(extra.range, extra.device.clone())?;
        }
        for extra in &config.mmio_devices {
            mmio.insert(extra.range, extra.device.clone())?;
        }
        let (pio, mmio) = (Arc::new(pio), Arc::new(mmio));

        let mut vcpus = Vec::with_capacity(config.vcpus as usize);
        for index in 0..config.vcpus {
            let vcpu = vm_fd
                .create_vcpu(u64::from(index))
                .map_err(KvmError::ioctl("KVM_CREATE_VCPU"))?;
            configure_vcpu(&vcpu, index, config.vcpus, &entry, &cpuid)?;
            if index > 0 && config.ap_start == ApStart::AtEntry {
                let runnable = kvm_bindings::kvm_mp_state {
                    mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE,
                };
                vcpu.set_mp_state(runnable)
                    .map_err(KvmError::ioctl("KVM_SET_MP_STATE"))?;
            }
            vcpus.push(vcpu);
        }

        let vm = Vm {
            latch: latch.clone(),
            threads: Mutex::new(Vec::with_capacity(vcpus.len())),
            serial,
            memory_mib: config.memory_mib,
            vm_fd,
            _serial_irq: serial_irq,
            _kvm: kvm,
            memory,
        };
        let (running, started) = std::sync::mpsc::sync_channel(vcpus.len());
        for (index, vcpu) in (0u32..).zip(vcpus) {
            let ctx = VcpuContext {
                index,
                latch: latch.clone(),
                pio: pio.clone(),
                mmio: mmio.clone(),
                running: running.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || run_vcpu(vcpu, ctx))
                // On error `vm` is dropped, which stops and joins the threads spawned so far.
                .map_err(|source| VmError::Thread {
                    vcpu: index,
                    source,
                })?;
            latch.add_thread(std::os::unix::thread::JoinHandleExt::as_pthread_t(&handle));
            lock(&vm.threads).push((index, handle));
        }
        // Return once every vCPU thread runs; a thread that died early drops its sender.
        drop(running);
        for _ in 0..config.vcpus {
            if started.recv().is_err() {
                break;
            }
        }
        tracing::debug!(
            vcpus = config.vcpus,
            memory_mib = config.memory_mib,
            "vm started"
        );
        Ok(vm)
    }

    /// Waits for the VM to end, at most `timeout` if given, and joins its vCPU threads.
    ///
    /// When the timeout passes first the VM is stopped and the result is
    /// [`ExitReason::Timeout`].
    ///
    /// # Errors
    ///
    /// [`VmError::VcpuPanicked`] when a vCPU thread panicked.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<ExitReason, VmError> {
        if self.latch.wait(timeout).is_none() {
            self.latch.finish(ExitReason::Timeout);
        }
        self.join_vcpus()?;
        Ok(self.latch.current().unwrap_or(ExitReason::HostStop))
    }

    /// Why the VM ended, or `None` while it runs.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.latch.current()
    }

    /// A handle that stops this VM from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            latch: self.latch.clone(),
        }
    }

    /// Stops the VM now (see [`StopHandle::stop`]).
    pub fn stop(&self) {
        self.latch.finish(ExitReason::HostStop);
    }

    /// Feeds `input` to the serial console; returns how many bytes fit its FIFO.
    pub fn feed_serial(&self, input: &[u8]) -> usize {
        lock(&self.serial).feed(input)
    }

    /// Pulses interrupt line `gsi` (edge-triggered: raise, then lower).
    ///
    /// # Errors
    ///
    /// [`KvmError::Ioctl`] when KVM refuses the line.
    pub fn inject_irq(&self, gsi: u32) -> Result<(), VmError> {
        self.vm_fd
            .set_irq_line(gsi, true)
            .map_err(KvmError::ioctl("KVM_IRQ_LINE"))?;
        self.vm_fd
            .set_irq_line(gsi, false)
            .map_err(KvmError::ioctl("KVM_IRQ_LINE"))?;
        Ok(())
    }

    /// The guest's memory.
    pub fn guest_memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// The guest memory size in MiB.
    pub fn memory_mib(&self) -> u64 {
        self.memory_mib
    }

    fn join_vcpus(&self) -> Result<(), VmError> {
        self.latch.kick_all();
        // Nobody may signal a thread id once its thread is joined.
        self.latch.forget_threads();
        let threads = std::mem::take(&mut *lock(&self.threads));
        let mut panicked = None;
        for (index, handle) in threads {
            if handle.join().is_err() {
                panicked.get_or_insert(index);
            }
        }
        panicked.map_or(Ok(()), |index| Err(VmError::VcpuPanicked(index)))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.latch.finish(ExitReason::HostStop);
        if let Err(error) = self.join_vcpus() {
            tracing::warn!(%error, "vCPU thread ended badly");
        }
    }
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("memory_mib", &self.memory_mib)
            .field("exit_reason", &self.latch.current())
            .finish()
    }
}

fn register_memory(vm_fd: &VmFd, memory: &GuestMemoryMmap) -> Result<(), VmError> {
    for (slot, region) in (0u32..).zip(memory.iter()) {
        let host = region
            .get_host_address(vm_memory::MemoryRegionAddress(0))
            .map_err(|_| KvmError::MissingCapability("host address of guest memory"))?;
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mapping owned by `memory`, which the `Vm` keeps until
        // after the VM fd (and so the KVM slot) is closed; the guest range does not overlap any
        // other slot because the regions come from one non-overlapping layout.
        unsafe { vm_fd.set_user_memory_region(region) }
            .map_err(KvmError::ioctl("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(())
}
