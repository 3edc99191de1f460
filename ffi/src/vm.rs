//! The VMM: boot a kernel directly in a KVM micro-VM, read its console, stop it, learn why it
//! ended. Wraps `podvisor_vmm::Vm`.
//!
//! A `podvisor_vm` owns the VM; its console (ttyS0) output is kept in a buffer the host reads by
//! offset, so a host can stream it by polling. Freeing the handle stops the VM if it still runs.

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use podvisor_vmm::{
    BootError, BootProtocol, ConfigError, ExitReason, HostProbe, KvmError, KvmMode, SerialBuffer,
    SerialSink, StopHandle, Vm, VmConfig, VmError,
};

use crate::boundary::{
    Out, arg_bytes, arg_non_empty_str, arg_opt_str, arg_timeout_ms, call, malloc_bytes,
    malloc_string,
};
use crate::error::{FfiError, chain, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Input, Options, ResultOut};
use podvisor_error_code::*;

/// A running or ended virtual machine. Created by `podvisor_vm_start`, freed by
/// `podvisor_vm_free`.
pub struct podvisor_vm {
    _private: [u8; 0],
}

/// What a `podvisor_vm` handle holds.
pub(crate) struct VmObject {
    vm: Vm,
    stop: StopHandle,
    console: SerialBuffer,
}

impl Opaque for podvisor_vm {
    type Object = VmObject;
    const NAME: &'static str = "podvisor_vm";
}

/// How the vCPUs enter the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_boot_protocol {
    /// PVH for an ELF vmlinux with a PVH note, the Linux 64-bit boot protocol otherwise.
    PODVISOR_BOOT_AUTO = 0,
    /// PVH: the kernel must be an ELF vmlinux with a PVH entry note.
    PODVISOR_BOOT_PVH = 1,
    /// The Linux 64-bit boot protocol, for a bzImage or an ELF vmlinux.
    PODVISOR_BOOT_LINUX64 = 2,
}

/// What `podvisor_vm_start` boots. Initialise with `podvisor_vm_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_vm_options {
    /// `sizeof(podvisor_vm_options)`, set by `podvisor_vm_options_init`.
    pub struct_size: usize,
    /// The kernel, a bzImage or an ELF vmlinux. Required; borrowed for the call only.
    pub kernel_path: *const c_char,
    /// An initramfs, or NULL for none. Borrowed for the call only.
    pub initrd_path: *const c_char,
    /// The kernel command line, or NULL for `"console=ttyS0"`. Borrowed for the call only.
    pub cmdline: *const c_char,
    /// The number of vCPUs; default 1.
    pub vcpus: u32,
    /// Guest RAM in MiB; default 128.
    pub memory_mib: u64,
    /// A `podvisor_boot_protocol`; default `PODVISOR_BOOT_AUTO`.
    pub boot_protocol: i32,
    /// The KVM device, or NULL for `/dev/kvm`. Borrowed for the call only.
    pub kvm_path: *const c_char,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_vm_options {
    const NAME: &'static str = "podvisor_vm_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_vm_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            kernel_path: std::ptr::null(),
            initrd_path: std::ptr::null(),
            cmdline: std::ptr::null(),
            vcpus: 1,
            memory_mib: 128,
            boot_protocol: podvisor_boot_protocol::PODVISOR_BOOT_AUTO as i32,
            kvm_path: std::ptr::null(),
        }
    }
}

// SAFETY: its fields are pointers and integers, for which any value C stores is valid (the
// pointers are checked before use, the protocol is an `int32_t` checked against the enum).
unsafe impl Input for podvisor_vm_options {}

/// Why a VM stopped running.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_vm_exit_reason {
    /// The VM still runs.
    PODVISOR_VM_RUNNING = 0,
    /// The guest powered off.
    PODVISOR_VM_EXIT_SHUTDOWN = 1,
    /// The guest asked for a reset; podvisor ends the VM instead of rebooting it.
    PODVISOR_VM_EXIT_RESET = 2,
    /// A vCPU triple-faulted; `vcpu` and `rip` say where.
    PODVISOR_VM_EXIT_TRIPLE_FAULT = 3,
    /// KVM could not emulate a guest instruction; `vcpu` and `rip` say where.
    PODVISOR_VM_EXIT_EMULATION_FAILURE = 4,
    /// KVM reported an internal error or a failed VM entry; `vcpu` and `rip` say where.
    PODVISOR_VM_EXIT_INTERNAL_ERROR = 5,
    /// The host stopped the VM (`podvisor_vm_stop`).
    PODVISOR_VM_EXIT_HOST_STOP = 6,
    /// `podvisor_vm_wait` ran out of time and stopped the VM.
    PODVISOR_VM_EXIT_TIMEOUT = 7,
}

/// How a VM ended. Initialise with `podvisor_vm_exit_init`; libpodvisor fills it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_vm_exit {
    /// `sizeof(podvisor_vm_exit)`, set by `podvisor_vm_exit_init`.
    pub struct_size: usize,
    /// Why the VM ended, or `PODVISOR_VM_RUNNING`.
    pub reason: podvisor_vm_exit_reason,
    /// The vCPU at fault, for the fault reasons; 0 otherwise.
    pub vcpu: u32,
    /// The guest instruction pointer at the fault, for the fault reasons; 0 otherwise.
    pub rip: u64,
}

// SAFETY: repr(C), starts with `struct_size: usize`. A result struct: not `Input`, so nothing
// but `struct_size` is ever read of the host's, whose enum field may hold any bytes.
unsafe impl Options for podvisor_vm_exit {
    const NAME: &'static str = "podvisor_vm_exit";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_vm_exit>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            reason: podvisor_vm_exit_reason::PODVISOR_VM_RUNNING,
            vcpu: 0,
            rip: 0,
        }
    }
}

/// How this host's KVM runs guests.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_kvm_mode {
    /// KVM opened, but its kind could not be identified.
    PODVISOR_KVM_UNKNOWN = 0,
    /// Hardware-assisted, Intel VMX.
    PODVISOR_KVM_VMX = 1,
    /// Hardware-assisted, AMD SVM.
    PODVISOR_KVM_SVM = 2,
    /// PVM, software-paged: guest ring 0 is emulated, so Linux guests boot very slowly.
    PODVISOR_KVM_PVM = 3,
}

/// What `podvisor_host_probe` found. Initialise with `podvisor_host_info_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_host_info {
    /// `sizeof(podvisor_host_info)`, set by `podvisor_host_info_init`.
    pub struct_size: usize,
    /// How KVM runs guests here.
    pub kvm_mode: podvisor_kvm_mode,
    /// Whether guest kernels run natively (VMX or SVM).
    pub hardware_assisted: bool,
    /// The most vCPUs KVM allows in one VM.
    pub max_vcpus: u32,
    /// The vCPU count KVM recommends.
    pub recommended_vcpus: u32,
}

// SAFETY: repr(C), starts with `struct_size: usize`. A result struct: not `Input`, so nothing
// but `struct_size` is ever read of the host's, whose enum and bool fields may hold any bytes.
unsafe impl Options for podvisor_host_info {
    const NAME: &'static str = "podvisor_host_info";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_host_info>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            kvm_mode: podvisor_kvm_mode::PODVISOR_KVM_UNKNOWN,
            hardware_assisted: false,
            max_vcpus: 0,
            recommended_vcpus: 0,
        }
    }
}

fn config_error(err: &ConfigError) -> FfiError {
    let argument = match err {
        ConfigError::NoVcpus | ConfigError::TooManyVcpus { .. } => "opts->vcpus",
        ConfigError::NoMemory
        | ConfigError::TooLittleMemory { .. }
        | ConfigError::TooMuchMemory { .. } => "opts->memory_mib",
        _ => "opts->cmdline",
    };
    FfiError::arg(PODVISOR_EINVAL, argument, chain(err))
}

fn kvm_error(err: &KvmError) -> FfiError {
    let code = match err {
        KvmError::NoDevice { .. } | KvmError::ApiVersion(_) | KvmError::MissingCapability(_) => {
            PODVISOR_EUNSUPPORTED
        }
        _ => PODVISOR_EOS,
    };
    FfiError::new(code, chain(err))
}

fn vm_error(err: &VmError) -> FfiError {
    let message = chain(err);
    match err {
        VmError::Config(config) => FfiError {
            message,
            ..config_error(config)
        },
        VmError::Kvm(kvm) => FfiError {
            message,
            ..kvm_error(kvm)
        },
        VmError::Boot(boot) => {
            let (code, argument) = match boot {
                BootError::KernelMissing { .. } => (PODVISOR_ENOTFOUND, Some("opts->kernel_path")),
                BootError::NotAKernel { .. } => (PODVISOR_EINVAL, Some("opts->kernel_path")),
                BootError::KernelUnreadable { .. } => (PODVISOR_EOS, Some("opts->kernel_path")),
                BootError::NoPvhEntry { .. } => (PODVISOR_EINVAL, Some("opts->boot_protocol")),
                BootError::KernelTooLarge { .. } | BootError::InitrdTooLarge { .. } => {
                    (PODVISOR_EINVAL, Some("opts->memory_mib"))
                }
                BootError::Cmdline(_) => (PODVISOR_EINVAL, Some("opts->cmdline")),
                BootError::InitrdUnreadable { .. } => (PODVISOR_EOS, Some("opts->initrd_path")),
                _ => (PODVISOR_ERROR, None),
            };
            FfiError {
                code,
                message,
                argument,
            }
        }
        VmError::VcpuPanicked(_) => FfiError::new(PODVISOR_EPANIC, message),
        _ => FfiError::new(PODVISOR_EOS, message),
    }
}

fn exit_struct(reason: Option<&ExitReason>) -> podvisor_vm_exit {
    use podvisor_vm_exit_reason::*;
    let (reason, vcpu, rip) = match reason {
        None => (PODVISOR_VM_RUNNING, 0, 0),
        Some(ExitReason::Shutdown) => (PODVISOR_VM_EXIT_SHUTDOWN, 0, 0),
        Some(ExitReason::Reset) => (PODVISOR_VM_EXIT_RESET, 0, 0),
        Some(ExitReason::TripleFault { vcpu, rip }) => (PODVISOR_VM_EXIT_TRIPLE_FAULT, *vcpu, *rip),
        Some(ExitReason::EmulationFailure { vcpu, rip, .. }) => {
            (PODVISOR_VM_EXIT_EMULATION_FAILURE, *vcpu, *rip)
        }
        Some(ExitReason::InternalError { vcpu, rip, .. }) => {
            (PODVISOR_VM_EXIT_INTERNAL_ERROR, *vcpu, *rip)
        }
        Some(ExitReason::HostStop) => (PODVISOR_VM_EXIT_HOST_STOP, 0, 0),
        Some(ExitReason::Timeout) => (PODVISOR_VM_EXIT_TIMEOUT, 0, 0),
        #[allow(unreachable_patterns)]
        Some(_) => (PODVISOR_VM_EXIT_INTERNAL_ERROR, 0, 0),
    };
    podvisor_vm_exit {
        reason,
        vcpu,
        rip,
        ..podvisor_vm_exit::defaults()
    }
}

/// Fills `opts` with the defaults: no kernel, no initrd, `"console=ttyS0"`, 1 vCPU, 128 MiB,
/// automatic boot protocol, `/dev/kvm`.
///
/// - `opts`: the struct to fill; borrowed for the call.
/// - `struct_size`: `sizeof(podvisor_vm_options)` as the caller's header declares it.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_options_init(
    opts: *mut podvisor_vm_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

/// Fills `exit` with `PODVISOR_VM_RUNNING` and sets its `struct_size`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `exit` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_exit_init(
    exit: *mut podvisor_vm_exit,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `exit` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(exit, struct_size, "exit") })
}

/// Fills `info` with empty values and sets its `struct_size`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `info` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_host_info_init(
    info: *mut podvisor_host_info,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `info` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(info, struct_size, "info") })
}

/// Probes the host's KVM: whether it is hardware-assisted or PVM, and how many vCPUs it allows.
///
/// - `kvm_path`: the KVM device, or NULL for `/dev/kvm`; borrowed for the call.
/// - `info`: initialised with `podvisor_host_info_init`; filled on success.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `info` is NULL; `PODVISOR_EINVAL` for an unknown
/// `info->struct_size`; `PODVISOR_EUTF8` for a `kvm_path` that is not UTF-8;
/// `PODVISOR_EUNSUPPORTED` if there is no usable KVM; `PODVISOR_EOS` if it cannot be opened.
///
/// Blocks: briefly (opens the device). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_host_probe(
    kvm_path: *const c_char,
    info: *mut podvisor_host_info,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `info` is NULL or readable and writable for its `struct_size` (contract).
        let info = unsafe { ResultOut::new(info, "info") }?;
        // SAFETY: `kvm_path` is NULL or a NUL-terminated string (contract).
        let path =
            unsafe { arg_opt_str(kvm_path, "kvm_path") }?.unwrap_or(podvisor_vmm::DEFAULT_KVM_PATH);
        let probe: HostProbe = podvisor_vmm::probe(path.as_ref()).map_err(|e| kvm_error(&e))?;
        info.set(podvisor_host_info {
            kvm_mode: match probe.mode {
                KvmMode::Vmx => podvisor_kvm_mode::PODVISOR_KVM_VMX,
                KvmMode::Svm => podvisor_kvm_mode::PODVISOR_KVM_SVM,
                KvmMode::Pvm => podvisor_kvm_mode::PODVISOR_KVM_PVM,
                _ => podvisor_kvm_mode::PODVISOR_KVM_UNKNOWN,
            },
            hardware_assisted: probe.is_hardware_assisted(),
            max_vcpus: u32::try_from(probe.max_vcpus).unwrap_or(u32::MAX),
            recommended_vcpus: u32::try_from(probe.recommended_vcpus).unwrap_or(u32::MAX),
            ..podvisor_host_info::defaults()
        });
        Ok(())
    })
}

/// Creates a VM from `opts`, loads its kernel and starts its vCPUs; the console output is kept
/// for `podvisor_vm_console_read`.
///
/// - `opts`: initialised with `podvisor_vm_options_init`, `kernel_path` set; it and its strings
///   are borrowed for the call only.
/// - `vm`: receives the new handle on success, owned by the caller, freed with
///   `podvisor_vm_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, `opts->kernel_path` or `vm` is NULL;
/// `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an unknown
/// `struct_size`, an empty path, a boot protocol outside the enum, vCPUs, memory or a command
/// line out of range, or a file that is not a kernel (the argument names which);
/// `PODVISOR_ENOTFOUND` if the kernel does not exist; `PODVISOR_EUNSUPPORTED` if the host has no
/// usable KVM; `PODVISOR_EOS` if KVM, memory or a thread could not be set up.
///
/// Blocks: until the vCPU threads run (milliseconds). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_start(
    opts: *const podvisor_vm_options,
    vm: *mut *mut podvisor_vm,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `opts` is NULL or readable for its `struct_size` (contract).
        let opts = unsafe { options::read(opts, "opts") }?;
        // SAFETY: `vm` is NULL or writable (contract).
        let out = unsafe { Out::new(vm, "vm") }?;
        // SAFETY: each string field is NULL or NUL-terminated (contract).
        let (kernel, initrd, cmdline, kvm_path) = unsafe {
            (
                arg_non_empty_str(opts.kernel_path, "opts->kernel_path")?,
                arg_opt_str(opts.initrd_path, "opts->initrd_path")?,
                arg_opt_str(opts.cmdline, "opts->cmdline")?,
                arg_opt_str(opts.kvm_path, "opts->kvm_path")?,
            )
        };
        let boot = match opts.boot_protocol {
            0 => BootProtocol::Auto,
            1 => BootProtocol::Pvh,
            2 => BootProtocol::Linux64,
            other => {
                return Err(FfiError::arg(
                    PODVISOR_EINVAL,
                    "opts->boot_protocol",
                    format!("opts->boot_protocol {other} is not a podvisor_boot_protocol"),
                ));
            }
        };

        let (sink, console) = SerialSink::buffer();
        let mut config = VmConfig::new(kernel)
            .vcpus(opts.vcpus)
            .memory_mib(opts.memory_mib)
            .boot(boot)
            .serial(sink);
        if let Some(initrd) = initrd {
            config = config.initrd(initrd);
        }
        if let Some(cmdline) = cmdline {
            config = config.cmdline(cmdline);
        }
        if let Some(kvm_path) = kvm_path {
            config.kvm_path = PathBuf::from(kvm_path);
        }
        let started = Vm::start(config).map_err(|e| vm_error(&e))?;
        let stop = started.stop_handle();
        out.set(handle::register::<podvisor_vm>(VmObject {
            vm: started,
            stop,
            console,
        }));
        Ok(())
    })
}

/// Copies the console output from byte `offset` on into a new buffer. Poll with the offset of
/// the previous call plus the length it returned to stream the console.
///
/// - `vm`: borrowed.
/// - `offset`: the first byte wanted; past the end gives an empty buffer.
/// - `data`: receives a NUL-terminated buffer owned by the caller, freed with `podvisor_free`
///   (also when the length is 0).
/// - `len`: receives the number of bytes, without the NUL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm`, `data` or `len` is NULL; `PODVISOR_EHANDLE`
/// for a freed or mistyped `vm`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_console_read(
    vm: *const podvisor_vm,
    offset: usize,
    data: *mut *mut u8,
    len: *mut usize,
) -> podvisor_error_code {
    call(|| {
        let vm = handle::get(vm, "vm")?;
        // SAFETY: `data` and `len` are NULL or writable (contract).
        let (data, len) = unsafe { (Out::new(data, "data")?, Out::new(len, "len")?) };
        let contents = vm.console.contents();
        let tail = contents.get(offset..).unwrap_or_default();
        data.set(malloc_bytes(tail)?);
        len.set(tail.len());
        Ok(())
    })
}

/// Waits until `text` appears in the console output, or `timeout_ms` passes.
///
/// - `vm`: borrowed.
/// - `text`: the UTF-8 text to wait for, not empty; borrowed for the call.
/// - `timeout_ms`: milliseconds to wait at most, or -1 to wait forever.
///
/// Returns `PODVISOR_OK` once the text is there; `PODVISOR_ETIMEOUT` if it did not appear in
/// time; `PODVISOR_ESTATE` if the VM ended without it appearing (so waiting on could not
/// help); `PODVISOR_ENULL` if `vm` or `text` is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for
/// a bad `text` or a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad `vm`.
///
/// Blocks: yes, up to the timeout or until the VM ends. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_console_wait_for(
    vm: *const podvisor_vm,
    text: *const c_char,
    timeout_ms: i64,
) -> podvisor_error_code {
    call(|| {
        let vm = handle::get(vm, "vm")?;
        // SAFETY: `text` is NULL or NUL-terminated (contract).
        let text = unsafe { arg_non_empty_str(text, "text") }?;
        // -1 waits as long as a Duration can say, which the console takes as no deadline.
        let timeout = arg_timeout_ms(timeout_ms, "timeout_ms")?.unwrap_or(Duration::MAX);
        if vm.console.wait_for(text, timeout) {
            return Ok(());
        }
        match vm.stop.exit_reason() {
            // The console closes when the VM ends: the text can no longer come.
            Some(reason) if vm.console.is_closed() => Err(FfiError::new(
                PODVISOR_ESTATE,
                format!("the VM ended ({reason}) before {text:?} appeared on the console"),
            )),
            _ => Err(FfiError::new(
                PODVISOR_ETIMEOUT,
                format!("{text:?} did not appear on the console in time"),
            )),
        }
    })
}

/// Writes bytes to the guest's serial console input.
///
/// - `vm`: borrowed.
/// - `input`, `input_len`: the bytes; NULL is allowed with length 0.
/// - `written`: receives how many bytes fit the UART's FIFO (the rest must be retried).
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` or `written` is NULL, or `input` is NULL with
/// a non-zero length; `PODVISOR_EHANDLE` for a bad `vm`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_console_write(
    vm: *const podvisor_vm,
    input: *const u8,
    input_len: usize,
    written: *mut usize,
) -> podvisor_error_code {
    call(|| {
        let vm = handle::get(vm, "vm")?;
        // SAFETY: `input` is NULL or readable for `input_len` bytes; `written` NULL or writable.
        let (input, written) = unsafe {
            (
                arg_bytes(input, input_len, "input")?,
                Out::new(written, "written")?,
            )
        };
        written.set(vm.vm.feed_serial(input));
        Ok(())
    })
}

/// Stops the VM, unless it already ended; its exit reason becomes `PODVISOR_VM_EXIT_HOST_STOP`.
/// The vCPUs leave the guest within milliseconds; `podvisor_vm_wait` waits for that.
///
/// Returns `PODVISOR_OK` (also when the VM had already ended); `PODVISOR_ENULL` if `vm` is NULL;
/// `PODVISOR_EHANDLE` for a bad `vm`.
///
/// Blocks: no. Threads: any, also while another thread waits in `podvisor_vm_wait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_stop(vm: *const podvisor_vm) -> podvisor_error_code {
    call(|| {
        handle::get(vm, "vm")?.stop.stop();
        Ok(())
    })
}

/// Waits for the VM to end and its vCPU threads to exit, then reports why it ended.
///
/// - `vm`: borrowed.
/// - `timeout_ms`: milliseconds to wait at most, or -1 to wait forever. When the time passes
///   first, the VM is stopped and the reason is `PODVISOR_VM_EXIT_TIMEOUT`.
/// - `exit`: initialised with `podvisor_vm_exit_init`; filled on success. May be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` is NULL; `PODVISOR_EINVAL` for a negative
/// timeout other than -1 or an unknown `exit->struct_size`; `PODVISOR_EHANDLE` for a bad `vm`;
/// `PODVISOR_EPANIC` if a vCPU thread panicked.
///
/// Blocks: yes, until the VM ends or the timeout passes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_wait(
    vm: *const podvisor_vm,
    timeout_ms: i64,
    exit: *mut podvisor_vm_exit,
) -> podvisor_error_code {
    call(|| {
        let vm = handle::get(vm, "vm")?;
        let timeout = arg_timeout_ms(timeout_ms, "timeout_ms")?;
        // SAFETY: `exit` is NULL or readable and writable for its `struct_size` (contract).
        let exit = unsafe { ResultOut::optional(exit, "exit") }?;
        let reason = vm.vm.wait(timeout).map_err(|e| vm_error(&e))?;
        if let Some(exit) = exit {
            exit.set(exit_struct(Some(&reason)));
        }
        Ok(())
    })
}

/// Reports whether the VM still runs, and why it ended if not, without waiting.
///
/// - `vm`: borrowed.
/// - `exit`: initialised with `podvisor_vm_exit_init`; filled on success.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` or `exit` is NULL; `PODVISOR_EINVAL` for an
/// unknown `exit->struct_size`; `PODVISOR_EHANDLE` for a bad `vm`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_exit_status(
    vm: *const podvisor_vm,
    exit: *mut podvisor_vm_exit,
) -> podvisor_error_code {
    call(|| {
        let vm = handle::get(vm, "vm")?;
        // SAFETY: `exit` is NULL or readable and writable for its `struct_size` (contract).
        let exit = unsafe { ResultOut::new(exit, "exit") }?;
        exit.set(exit_struct(vm.stop.exit_reason().as_ref()));
        Ok(())
    })
}

/// Describes how the VM ended in one line of text, with KVM's details for the fault reasons
/// (`"triple fault on vCPU 0 at rip 0x1000"`), or `"running"`.
///
/// - `vm`: borrowed.
/// - `text`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `vm` or `text` is NULL; `PODVISOR_EHANDLE` for a
/// bad `vm`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_exit_describe(
    vm: *const podvisor_vm,
    text: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        let vm = handle::get(vm, "vm")?;
        // SAFETY: `text` is NULL or writable (contract).
        let text = unsafe { Out::new(text, "text") }?;
        let description = vm
            .stop
            .exit_reason()
            .map_or_else(|| "running".to_owned(), |r| r.to_string());
        text.set(malloc_string(&description)?);
        Ok(())
    })
}

/// Frees a VM handle. A VM that still runs is stopped, and its threads, memory and file
/// descriptors are released before this returns (unless another thread is still inside a call
/// on the handle; then when that call returns). NULL does nothing.
///
/// Ownership: takes `vm`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: until the vCPU threads exit (milliseconds). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_vm_free(vm: *mut podvisor_vm) -> podvisor_error_code {
    call(|| {
        if let Some(object) = handle::release(vm.cast_const(), "vm")? {
            object.stop.stop();
            drop::<Arc<VmObject>>(object);
        }
        Ok(())
    })
}
