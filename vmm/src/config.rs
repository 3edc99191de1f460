//! What a VM is made of: [`VmConfig`], the serial sink, and the checks a configuration must
//! pass before any KVM resource is created.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::acpi::AcpiDevice;
use crate::cpu::CpuidFilter;
use crate::devices::{BusDevice, BusRange};
use crate::kvm::DEFAULT_KVM_PATH;
use crate::memory::{CMDLINE_MAX_SIZE, MAX_MEMORY_MIB, MIN_MEMORY_MIB};
use crate::vm::ApStart;

/// Errors of a [`VmConfig`] that cannot describe a VM on this host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `vcpus` is zero.
    #[error("vcpus is 0: a VM needs at least one vCPU")]
    NoVcpus,
    /// `vcpus` is above what KVM or the APIC layout allows.
    #[error("vcpus is {requested}, above this host's maximum of {max}")]
    TooManyVcpus {
        /// The count asked for.
        requested: u32,
        /// The most this host allows.
        max: u32,
    },
    /// `memory_mib` is zero.
    #[error("memory_mib is 0: a VM needs memory")]
    NoMemory,
    /// `memory_mib` is below what the boot layout needs.
    #[error("memory_mib is {requested}, below the {min} MiB the boot layout needs")]
    TooLittleMemory {
        /// The size asked for, in MiB.
        requested: u64,
        /// The smallest size that works, in MiB.
        min: u64,
    },
    /// `memory_mib` is above the host's RAM or the guest address layout.
    #[error("memory_mib is {requested}, above the {max} MiB limit of the {limit}")]
    TooMuchMemory {
        /// The size asked for, in MiB.
        requested: u64,
        /// The limit, in MiB.
        max: u64,
        /// Which limit: the host's RAM or the guest layout.
        limit: &'static str,
    },
    /// The command line does not fit the kernel's buffer (NUL included).
    #[error("cmdline is {len} bytes, the limit is {max} bytes")]
    CmdlineTooLong {
        /// Its length in bytes, without the NUL.
        len: usize,
        /// The most bytes allowed, without the NUL.
        max: usize,
    },
    /// The command line contains a NUL byte, which would cut it short.
    #[error("cmdline contains a NUL byte at offset {0}")]
    CmdlineHasNul(usize),
}

/// A function that takes serial output, called on the vCPU thread that wrote it.
pub type SerialCallback = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Where the guest's serial console (ttyS0) output goes.
#[derive(Clone, Default)]
pub enum SerialSink {
    /// Output is dropped.
    #[default]
    Discard,
    /// Output is kept in a shared buffer that can be read while the VM runs.
    Buffer(SerialBuffer),
    /// Output is written, unbuffered, to a file.
    File(Arc<File>),
    /// Output is written to this process's stdout.
    Stdout,
    /// Each chunk of output is handed to a callback, on the vCPU thread that wrote it, with
    /// the UART locked: the callback must not call [`crate::Vm::feed_serial`] itself.
    Callback(SerialCallback),
}

impl SerialSink {
    /// A sink into a fresh shared buffer, returned alongside for reading.
    pub fn buffer() -> (SerialSink, SerialBuffer) {
        let buffer = SerialBuffer::default();
        (SerialSink::Buffer(buffer.clone()), buffer)
    }

    /// A sink appending to the file at `path`, created if missing.
    ///
    /// # Errors
    ///
    /// The error of opening the file.
    pub fn file(path: impl AsRef<std::path::Path>) -> io::Result<SerialSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(SerialSink::File(Arc::new(file)))
    }

    /// Writes guest output to the sink. Errors of a file or stdout are returned to the caller.
    pub(crate) fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            SerialSink::Discard => Ok(()),
            SerialSink::Buffer(buffer) => {
                buffer.append(bytes);
                Ok(())
            }
            SerialSink::File(file) => (&**file).write_all(bytes),
            SerialSink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            SerialSink::Callback(callback) => {
                callback(bytes);
                Ok(())
            }
        }
    }
}

impl fmt::Debug for SerialSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SerialSink::Discard => "Discard",
            SerialSink::Buffer(_) => "Buffer",
            SerialSink::File(_) => "File",
            SerialSink::Stdout => "Stdout",
            SerialSink::Callback(_) => "Callback",
        })
    }
}

/// A growing, shared buffer of serial output that readers can wait on.
///
/// The buffer of a VM's console closes when the VM ends: waits then stop waiting for output
/// that can no longer come.
#[derive(Clone, Default)]
pub struct SerialBuffer {
    inner: Arc<(Mutex<Vec<u8>>, Condvar, AtomicBool)>,
}

impl SerialBuffer {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A poisoned lock only means a writer panicked mid-append; the bytes are still valid.
        self.inner
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, bytes: &[u8]) {
        self.lock().extend_from_slice(bytes);
        self.inner.1.notify_all();
    }

    /// Marks the end of output (its VM ended) and wakes every waiter.
    pub(crate) fn close(&self) {
        let _guard = self.lock();
        self.inner.2.store(true, Ordering::SeqCst);
        self.inner.1.notify_all();
    }

    /// Whether the VM writing to this buffer has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.2.load(Ordering::SeqCst)
    }

    /// A copy of everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// Waits until `done` holds for the output, `timeout` passes, or the buffer closes (its VM
    /// ended); returns whether it held. [`SerialBuffer::is_closed`] tells the last two apart.
    ///
    /// A timeout whose end the clock cannot represent (`Duration::MAX`, say) waits until the
    /// output comes or the VM ends.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&[u8]) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.lock();
        loop {
            if done(&guard) {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            let condvar = &self.inner.1;
            guard = match deadline {
                None => condvar.wait(guard).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    match condvar.wait_timeout(guard, deadline - now) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
            };
        }
    }

    /// Waits until `needle` appears in the output, `timeout` passes, or the VM ends.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let needle = needle.as_bytes();
        self.wait_until(timeout, |out| {
            out.windows(needle.len()).any(|w| w == needle)
        })
    }
}

/// How the vCPUs enter the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BootProtocol {
    /// PVH for an ELF with a PVH note, the 64-bit boot protocol otherwise.
    #[default]
    Auto,
    /// PVH: 32-bit protected mode, paging off, `%ebx` pointing at `hvm_start_info`.
    Pvh,
    /// The Linux 64-bit boot protocol: long mode, identity-mapped page tables, `%rsi` pointing
    /// at the zero page. For a bzImage the entry is its 64-bit entry point, for an ELF its
    /// `e_entry`.
    Linux64,
}

/// A device on the port I/O or MMIO bus, added by the embedder.
#[derive(Clone)]
pub struct ExtraDevice {
    /// Where it sits.
    pub range: BusRange,
    /// The device.
    pub device: Arc<Mutex<dyn BusDevice>>,
}

impl fmt::Debug for ExtraDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtraDevice")
            .field("range", &self.range)
            .finish()
    }
}

/// Everything needed to start a VM.
///
/// Fields are public; the chained setters are a shorthand.
///
/// ```no_run
/// use podvisor_vmm::{SerialSink, Vm, VmConfig};
///
/// let (sink, console) = SerialSink::buffer();
/// let config = VmConfig::new("/root/.cache/podvisor/kernel/vmlinux")
///     .vcpus(2)
///     .memory_mib(256)
///     .cmdline("console=ttyS0 panic=-1")
///     .serial(sink);
/// let vm = Vm::start(config)?;
/// let reason = vm.wait(Some(std::time::Duration::from_secs(5)))?;
/// println!("{reason}: {}", console.text());
/// # Ok::<(), podvisor_vmm::VmError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Number of vCPUs, one thread each.
    pub vcpus: u32,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// The kernel: a bzImage or an ELF vmlinux.
    pub kernel: PathBuf,
    /// An initramfs, placed as high in low RAM as fits.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
    /// Where the serial console output goes.
    pub serial: SerialSink,
    /// How the vCPUs enter the kernel.
    pub boot: BootProtocol,
    /// Which CPUID features the guest sees.
    pub cpuid: CpuidFilter,
    /// Devices declared in the DSDT (virtio-mmio and others).
    pub acpi_devices: Vec<AcpiDevice>,
    /// Devices on the port I/O bus.
    pub pio_devices: Vec<ExtraDevice>,
    /// Devices on the MMIO bus.
    pub mmio_devices: Vec<ExtraDevice>,
    /// How the vCPUs other than the first start.
    pub ap_start: ApStart,
    /// The KVM device node.
    pub kvm_path: PathBuf,
}

impl VmConfig {
    /// A one-vCPU, 128 MiB VM for `kernel`, console on ttyS0, output discarded.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            vcpus: 1,
            memory_mib: 128,
            kernel: kernel.into(),
            initrd: None,
            cmdline: "console=ttyS0".to_owned(),
            serial: SerialSink::Discard,
            boot: BootProtocol::Auto,
            cpuid: CpuidFilter::default(),
            acpi_devices: Vec::new(),
            pio_devices: Vec::new(),
            mmio_devices: Vec::new(),
            ap_start: ApStart::InitSipi,
            kvm_path: PathBuf::from(DEFAULT_KVM_PATH),
        }
    }

    /// Sets the vCPU count.
    pub fn vcpus(mut self, vcpus: u32) -> Self {
        self.vcpus = vcpus;
        self
    }

    /// Sets the guest RAM in MiB.
    pub fn memory_mib(mut self, memory_mib: u64) -> Self {
        self.memory_mib = memory_mib;
        self
    }

    /// Sets the initramfs.
    pub fn initrd(mut self, initrd: impl Into<PathBuf>) -> Self {
        self.initrd = Some(initrd.into());
        self
    }

    /// Sets the kernel command line.
    pub fn cmdline(mut self, cmdline: impl Into<String>) -> Self {
        self.cmdline = cmdline.into();
        self
    }

    /// Sets where serial output goes.
    pub fn serial(mut self, serial: SerialSink) -> Self {
        self.serial = serial;
        self
    }

    /// Sets the boot protocol.
    pub fn boot(mut self, boot: BootProtocol) -> Self {
        self.boot = boot;
        self
    }

    /// Sets the CPUID filter.
    pub fn cpuid(mut self, cpuid: CpuidFilter) -> Self {
        self.cpuid = cpuid;
        self
    }

    /// Declares a device in the DSDT.
    pub fn acpi_device(mut self, device: AcpiDevice) -> Self {
        self.acpi_devices.push(device);
        self
    }

    /// Adds a device on the port I/O bus.
    pub fn pio_device(mut self, range: BusRange, device: Arc<Mutex<dyn BusDevice>>) -> Self {
        self.pio_devices.push(ExtraDevice { range, device });
        self
    }

    /// Adds a device on the MMIO bus.
    pub fn mmio_device(mut self, range: BusRange, device: Arc<Mutex<dyn BusDevice>>) -> Self {
        self.mmio_devices.push(ExtraDevice { range, device });
        self
    }

    /// Sets how the vCPUs other than the first start.
    pub fn ap_start(mut self, ap_start: ApStart) -> Self {
        self.ap_start = ap_start;
        self
    }

    /// Sets the KVM device node.
    pub fn kvm_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kvm_path = path.into();
        self
    }

    /// Checks the sizes against the layout and the host: `max_vcpus` is KVM's limit.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first field out of range.
    pub fn validate(&self, max_vcpus: u32) -> Result<(), ConfigError> {
        // xAPIC ids are 8 bits and 0xff is the broadcast id.
        let max_vcpus = max_vcpus.min(254);
        match self.vcpus {
            0 => return Err(ConfigError::NoVcpus),
            n if n > max_vcpus => {
                return Err(ConfigError::TooManyVcpus {
                    requested: n,
                    max: max_vcpus,
                });
            }
            _ => {}
        }

        match self.memory_mib {
            0 => return Err(ConfigError::NoMemory),
            m if m < MIN_MEMORY_MIB => {
                return Err(ConfigError::TooLittleMemory {
                    requested: m,
                    min: MIN_MEMORY_MIB,
                });
            }
            m if m > MAX_MEMORY_MIB => {
                return Err(ConfigError::TooMuchMemory {
                    requested: m,
                    max: MAX_MEMORY_MIB,
                    limit: "guest address layout",
                });
            }
            m => {
                if let Some(host) = host_memory_mib() {
                    if m > host {
                        return Err(ConfigError::TooMuchMemory {
                            requested: m,
                            max: host,
                            limit: "host RAM",
                        });
                    }
                }
            }
        }

        if let Some(at) = self.cmdline.bytes().position(|b| b == 0) {
            return Err(ConfigError::CmdlineHasNul(at));
        }
        if self.cmdline.len() >= CMDLINE_MAX_SIZE {
            return Err(ConfigError::CmdlineTooLong {
                len: self.cmdline.len(),
                max: CMDLINE_MAX_SIZE - 1,
            });
        }
        Ok(())
    }
}

/// The host's RAM in MiB (`MemTotal`), if it can be read.
fn host_memory_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_validate_fails_when_vcpus_out_of_range() {
        let config = VmConfig::new("k");
        assert_eq!(
            config.clone().vcpus(0).validate(8),
            Err(ConfigError::NoVcpus)
        );
        assert_eq!(
            config.vcpus(9).validate(8),
            Err(ConfigError::TooManyVcpus {
                requested: 9,
                max: 8
            })
        );
    }

    #[test]
    fn test_validate_fails_when_memory_out_of_range() {
        let config = VmConfig::new("k");
        assert_eq!(
            config.clone().memory_mib(0).validate(8),
            Err(ConfigError::NoMemory)
        );
        assert!(matches!(
            config.memory_mib(u64::MAX).validate(8),
            Err(ConfigError::TooMuchMemory { .. })
        ));
    }

    #[test]
    fn test_validate_fails_when_cmdline_too_long_or_has_nul() {
        let config = VmConfig::new("k");
        assert!(matches!(
            config.clone().cmdline("x".repeat(5000)).validate(8),
            Err(ConfigError::CmdlineTooLong { len: 5000, .. })
        ));
        assert_eq!(
            config.cmdline("a\0b").validate(8),
            Err(ConfigError::CmdlineHasNul(1))
        );
    }

    #[test]
    fn test_serial_buffer_wait_for_takes_a_timeout_past_the_clocks_range() {
        let (sink, buffer) = SerialSink::buffer();
        assert!(sink.write(b"ready").is_ok());
        assert!(buffer.wait_for("ready", Duration::MAX));

        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            sink.write(b" and later")
        });
        assert!(buffer.wait_for("later", Duration::MAX));
        assert!(writer.join().is_ok());
    }

    #[test]
    fn test_serial_buffer_wait_ends_when_the_buffer_closes() {
        let (sink, buffer) = SerialSink::buffer();
        assert!(sink.write(b"ready").is_ok());
        let closer = {
            let buffer = buffer.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                buffer.close();
            })
        };
        assert!(!buffer.wait_for("never", Duration::MAX));
        assert!(buffer.is_closed());
        assert!(closer.join().is_ok());
        // Output already there is still found.
        assert!(buffer.wait_for("ready", Duration::MAX));
    }

    #[test]
    fn test_serial_buffer_wait_for_sees_appended_text() {
        let (sink, buffer) = SerialSink::buffer();
        let writer = std::thread::spawn(move || sink.write(b"hello world"));
        assert!(buffer.wait_for("world", Duration::from_secs(5)));
        assert!(writer.join().is_ok());
        assert_eq!(buffer.text(), "hello world");
    }
}
