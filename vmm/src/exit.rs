//! Why a VM ended, and the latch every vCPU thread, device and stop handle races to set.
//!
//! The first reason recorded wins; everything after it is the VM winding down. Setting the
//! latch also kicks every vCPU thread out of `KVM_RUN` (see [`crate::vcpu`]), so a VM ends
//! within a few milliseconds of the event, whichever thread saw it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::{SerialBuffer, SerialSink};

/// Why a VM stopped running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest powered off (ACPI S5 through the FADT sleep control register).
    Shutdown,
    /// The guest asked for a reset (i8042 pulse or the ACPI reset register). podvisor does not
    /// reboot a guest; the VM ends and the caller decides.
    Reset,
    /// A vCPU triple-faulted (`KVM_EXIT_SHUTDOWN`).
    TripleFault {
        /// The vCPU that faulted.
        vcpu: u32,
        /// Its instruction pointer when KVM gave up.
        rip: u64,
    },
    /// KVM could not emulate an instruction of the guest.
    EmulationFailure {
        /// The vCPU that stopped.
        vcpu: u32,
        /// The address of the instruction.
        rip: u64,
        /// What KVM reported (suberror and data words).
        details: String,
    },
    /// KVM reported an internal error or a failed VM entry.
    InternalError {
        /// The vCPU that stopped.
        vcpu: u32,
        /// The instruction pointer at the time.
        rip: u64,
        /// What KVM reported (suberror and data words, or the entry failure reason).
        details: String,
    },
    /// The host stopped the VM through a [`crate::StopHandle`] or by dropping it.
    HostStop,
    /// [`crate::Vm::wait`] ran out of time and stopped the VM.
    Timeout,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Shutdown => f.write_str("guest shutdown"),
            ExitReason::Reset => f.write_str("guest reset"),
            ExitReason::TripleFault { vcpu, rip } => {
                write!(f, "triple fault on vCPU {vcpu} at rip {rip:#x}")
            }
            ExitReason::EmulationFailure { vcpu, rip, details } => {
                write!(
                    f,
                    "KVM emulation failure on vCPU {vcpu} at rip {rip:#x}: {details}"
                )
            }
            ExitReason::InternalError { vcpu, rip, details } => {
                write!(
                    f,
                    "KVM internal error on vCPU {vcpu} at rip {rip:#x}: {details}"
                )
            }
            ExitReason::HostStop => f.write_str("stopped by the host"),
            ExitReason::Timeout => f.write_str("timed out"),
        }
    }
}

/// The shared end-of-VM state.
pub(crate) struct ExitLatch {
    reason: Mutex<Option<ExitReason>>,
    ended: Condvar,
    stopping: AtomicBool,
    /// The vCPU threads still to be kicked; emptied before they are joined.
    threads: Mutex<Vec<libc::pthread_t>>,
    /// The console buffer, closed when the VM ends.
    console: Option<SerialBuffer>,
}

impl ExitLatch {
    pub(crate) fn new() -> Self {
        ExitLatch {
            reason: Mutex::new(None),
            ended: Condvar::new(),
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            console: None,
        }
    }

    /// Closes the VM's console buffer, if it has one, when the VM ends.
    pub(crate) fn closing_console(mut self, sink: &SerialSink) -> Self {
        if let SerialSink::Buffer(buffer) = sink {
            self.console = Some(buffer.clone());
        }
        self
    }

    fn reason(&self) -> MutexGuard<'_, Option<ExitReason>> {
        self.reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn threads(&self) -> MutexGuard<'_, Vec<libc::pthread_t>> {
        self.threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the vCPUs should leave their run loops.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Records `reason` unless another came first, and kicks every vCPU out of `KVM_RUN`.
    pub(crate) fn finish(&self, reason: ExitReason) {
        {
            let mut slot = self.reason();
            if slot.is_none() {
                tracing::debug!(%reason, "vm exit");
                crate::metrics::vm_exited(&reason);
                *slot = Some(reason);
            }
        }
        // The flag must be visible before the kick lands, see `vcpu::run_loop`.
        self.stopping.store(true, Ordering::SeqCst);
        self.ended.notify_all();
        if let Some(console) = &self.console {
            console.close();
        }
        self.kick_all();
    }

    /// The reason, if the VM has ended.
    pub(crate) fn current(&self) -> Option<ExitReason> {
        self.reason().clone()
    }

    /// Waits until a reason is recorded or `timeout` passes; `None`, or a timeout whose end the
    /// clock cannot represent, waits forever.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<ExitReason> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut slot = self.reason();
        loop {
            if let Some(reason) = slot.as_ref() {
                return Some(reason.clone());
            }
            slot = match deadline {
                None => self.ended.wait(slot).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    self.ended
                        .wait_timeout(slot, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    pub(crate) fn add_thread(&self, thread: libc::pthread_t) {
        self.threads().push(thread);
    }

    /// Forgets the threads so nobody kicks them once they are being joined.
    pub(crate) fn forget_threads(&self) {
        self.threads().clear();
    }

    /// Kicks every vCPU thread still registered.
    pub(crate) fn kick_all(&self) {
        for &thread in self.threads().iter() {
            crate::vcpu::kick(thread);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn test_wait_takes_a_timeout_past_the_clocks_range_as_forever() {
        let latch = Arc::new(ExitLatch::new());
        let finisher = {
            let latch = Arc::clone(&latch);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                latch.finish(ExitReason::Shutdown);
            })
        };
        assert_eq!(latch.wait(Some(Duration::MAX)), Some(ExitReason::Shutdown));
        assert!(finisher.join().is_ok());
        assert_eq!(latch.wait(Some(Duration::MAX)), Some(ExitReason::Shutdown));
    }

    #[test]
    fn test_wait_gives_none_when_the_timeout_passes() {
        let latch = ExitLatch::new();
        assert_eq!(latch.wait(Some(Duration::from_millis(5))), None);
    }
}
