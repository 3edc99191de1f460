//! The vCPU threads: one per vCPU, each looping on `KVM_RUN` and routing exits to the buses.
//!
//! Stopping a vCPU that sits in `KVM_RUN` (or in a guest `hlt`, which the in-kernel LAPIC
//! handles without leaving the ioctl) takes a signal. Every vCPU thread publishes its
//! `kvm_run` page in a thread-local before it first checks the stop flag; the kick signal's
//! handler sets `immediate_exit` there. So whether the signal lands inside `KVM_RUN` (which
//! then returns `EINTR`) or just before it (which then returns at once), the thread comes back
//! to its loop, sees the flag and leaves. The signal is `SIGRTMIN + 2`; embedders must not use
//! it for anything else.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use kvm_bindings::kvm_run;
use kvm_ioctls::{VcpuExit, VcpuFd};
use libc::{EAGAIN, EINTR, c_int, siginfo_t};
use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

use crate::devices::Bus;
use crate::exit::{ExitLatch, ExitReason};

/// `KVM_INTERNAL_ERROR_EMULATION`.
const INTERNAL_ERROR_EMULATION: u32 = 1;
/// `KVM_SYSTEM_EVENT_SHUTDOWN` and `KVM_SYSTEM_EVENT_RESET`.
const SYSTEM_EVENT_SHUTDOWN: u32 = 1;
const SYSTEM_EVENT_RESET: u32 = 2;
/// How many unclaimed port or MMIO accesses a vCPU logs before it goes quiet.
const UNCLAIMED_LOG_LIMIT: u32 = 16;

thread_local! {
    /// The `kvm_run` page of the vCPU this thread runs, or null.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The signal that kicks a vCPU thread out of `KVM_RUN`.
pub fn kick_signal() -> c_int {
    SIGRTMIN() + 2
}

extern "C" fn on_kick(_signal: c_int, _info: *mut siginfo_t, _context: *mut c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: the pointer is this thread's own `kvm_run` mapping, published by `run_vcpu`
        // while its `VcpuFd` is alive and cleared before the fd is dropped. The signal
        // handler runs on that same thread, so the mapping is live. A volatile store is
        // what KVM reads on the next entry.
        unsafe { std::ptr::write_volatile(&raw mut (*run).immediate_exit, 1) };
    }
}

/// Installs the kick handler once per process.
pub(crate) fn install_kick_handler() -> Result<(), vmm_sys_util::errno::Error> {
    static INSTALLED: OnceLock<Option<i32>> = OnceLock::new();
    let failed = INSTALLED.get_or_init(|| {
        register_signal_handler(kick_signal(), on_kick)
            .err()
            .map(|e| e.errno())
    });
    match failed {
        Some(errno) => Err(vmm_sys_util::errno::Error::new(*errno)),
        None => Ok(()),
    }
}

/// Sends the kick signal to `thread`.
pub(crate) fn kick(thread: libc::pthread_t) {
    // SAFETY: `thread` is a vCPU thread that has not been joined yet (the latch forgets
    // threads before joining them), so its id is valid; the signal has a handler installed.
    unsafe { libc::pthread_kill(thread, kick_signal()) };
}

/// What a vCPU thread needs besides its fd.
pub(crate) struct VcpuContext {
    pub(crate) index: u32,
    pub(crate) latch: Arc<ExitLatch>,
    pub(crate) pio: Arc<Bus>,
    pub(crate) mmio: Arc<Bus>,
    /// Told once the thread is about to enter its run loop.
    pub(crate) running: std::sync::mpsc::SyncSender<()>,
}

enum Step {
    Continue,
    Kicked,
    TripleFault,
    Internal,
    FailEntry(u64),
    Event(ExitReason),
    Unexpected(String),
}

/// The body of a vCPU thread.
pub(crate) fn run_vcpu(mut vcpu: VcpuFd, ctx: VcpuContext) {
    let run: *mut kvm_run = vcpu.get_kvm_run();
    KVM_RUN.with(|slot| slot.set(run));
    // The starter may be gone already if a later vCPU failed to spawn; nothing to tell then.
    let _ = ctx.running.send(());
    let mut unclaimed = 0u32;
    let mut note_unclaimed = |kind: &str, addr: u64| {
        unclaimed += 1;
        if unclaimed <= UNCLAIMED_LOG_LIMIT {
            tracing::debug!(vcpu = ctx.index, kind, addr, "access nobody claims");
        }
    };

    loop {
        if ctx.latch.stopping() {
            break;
        }
        let step = match vcpu.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                if !ctx.pio.write(u64::from(port), data) {
                    note_unclaimed("pio write", u64::from(port));
                }
                Step::Continue
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                if !ctx.pio.read(u64::from(port), data) {
                    note_unclaimed("pio read", u64::from(port));
                }
                Step::Continue
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                if !ctx.mmio.write(addr, data) {
                    note_unclaimed("mmio write", addr);
                }
                Step::Continue
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                if !ctx.mmio.read(addr, data) {
                    note_unclaimed("mmio read", addr);
                }
                Step::Continue
            }
            Ok(VcpuExit::Shutdown) => Step::TripleFault,
            Ok(VcpuExit::InternalError) => Step::Internal,
            Ok(VcpuExit::FailEntry(reason, _cpu)) => Step::FailEntry(reason),
            Ok(VcpuExit::SystemEvent(SYSTEM_EVENT_SHUTDOWN, _)) => {
                Step::Event(ExitReason::Shutdown)
            }
            Ok(VcpuExit::SystemEvent(SYSTEM_EVENT_RESET, _)) => Step::Event(ExitReason::Reset),
            Ok(VcpuExit::Intr) | Ok(VcpuExit::Hlt) | Ok(VcpuExit::IrqWindowOpen) => Step::Continue,
            Ok(other) => Step::Unexpected(format!("{other:?}")),
            Err(error) if error.errno() == EINTR || error.errno() == EAGAIN => Step::Kicked,
            Err(error) => Step::Unexpected(format!("KVM_RUN failed: {error}")),
        };

        let reason = match step {
            Step::Continue => continue,
            Step::Kicked => {
                vcpu.set_kvm_immediate_exit(0);
                continue;
            }
            Step::Event(reason) => reason,
            Step::TripleFault => ExitReason::TripleFault {
                vcpu: ctx.index,
                rip: rip(&vcpu),
            },
            Step::Internal => internal_error(&mut vcpu, ctx.index),
            Step::FailEntry(reason) => ExitReason::InternalError {
                vcpu: ctx.index,
                rip: rip(&vcpu),
                details: format!("VM entry failed, hardware reason {reason:#x}"),
            },
            Step::Unexpected(details) => ExitReason::InternalError {
                vcpu: ctx.index,
                rip: rip(&vcpu),
                details,
            },
        };
        ctx.latch.finish(reason);
        break;
    }

    // The handler must not touch the page once the fd (and its mapping) is gone.
    KVM_RUN.with(|slot| slot.set(std::ptr::null_mut()));
    drop(vcpu);
}

fn rip(vcpu: &VcpuFd) -> u64 {
    vcpu.get_regs().map(|regs| regs.rip).unwrap_or(u64::MAX)
}

/// The bytes KVM fetched at the failing instruction, when an emulation failure carries them
/// (`KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES`): after the flags word, one length
/// byte and up to 15 instruction bytes.
fn instruction_bytes(suberror: u32, data: &[u64]) -> Option<String> {
    if suberror != INTERNAL_ERROR_EMULATION || data.len() < 3 || data[0] & 1 == 0 {
        return None;
    }
    let raw: Vec<u8> = data[1..3]
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect();
    let len = usize::from(raw[0]).min(raw.len() - 1);
    let hex: Vec<String> = raw[1..=len].iter().map(|b| format!("{b:02x}")).collect();
    Some(hex.join(" "))
}

fn internal_error(vcpu: &mut VcpuFd, index: u32) -> ExitReason {
    let rip = rip(vcpu);
    let run = vcpu.get_kvm_run();
    // SAFETY: KVM filled the `internal` member of the exit union, as `exit_reason` said
    // (`KVM_EXIT_INTERNAL_ERROR`); all its fields are plain integers.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let ndata = (internal.ndata as usize).min(internal.data.len());
    let data = &internal.data[..ndata];
    let details = match instruction_bytes(internal.suberror, data) {
        Some(bytes) => format!("instruction bytes {bytes}"),
        None => format!("suberror {}, data {data:x?}", internal.suberror),
    };
    if internal.suberror == INTERNAL_ERROR_EMULATION {
        ExitReason::EmulationFailure {
            vcpu: index,
            rip,
            details,
        }
    } else {
        ExitReason::InternalError {
            vcpu: index,
            rip,
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_instruction_bytes_decodes_emulation_failure_data() {
        // cmpxchg16b [rsi] as KVM reports it: flags 1, length 15, bytes.
        let data = [1, 0x00ba_660e_c70f_480f, 0x00f4_ba66_ee34_b006];
        let bytes = instruction_bytes(INTERNAL_ERROR_EMULATION, &data).expect("bytes are there");
        assert!(bytes.starts_with("48 0f c7 0e"), "{bytes}");
        assert_eq!(instruction_bytes(2, &data), None);
    }
}
