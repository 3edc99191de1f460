//! Process-wide counters an operator wants to watch: VMs started, starts that failed, and VM
//! exits by reason. They only ever grow; read them with [`counters`] and export them however
//! the embedder exports metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::exit::ExitReason;

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmmCounters {
    /// VMs whose vCPUs started running.
    pub vms_started: u64,
    /// `Vm::start` calls that returned an error.
    pub start_failures: u64,
    /// Exits with [`ExitReason::Shutdown`].
    pub exits_shutdown: u64,
    /// Exits with [`ExitReason::Reset`].
    pub exits_reset: u64,
    /// Exits with [`ExitReason::TripleFault`].
    pub exits_triple_fault: u64,
    /// Exits with [`ExitReason::EmulationFailure`] or [`ExitReason::InternalError`].
    pub exits_kvm_error: u64,
    /// Exits with [`ExitReason::HostStop`].
    pub exits_host_stop: u64,
    /// Exits with [`ExitReason::Timeout`].
    pub exits_timeout: u64,
}

static VMS_STARTED: AtomicU64 = AtomicU64::new(0);
static START_FAILURES: AtomicU64 = AtomicU64::new(0);
static EXITS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// The counters of this process so far.
pub fn counters() -> VmmCounters {
    let exits = |i: usize| EXITS[i].load(Ordering::Relaxed);
    VmmCounters {
        vms_started: VMS_STARTED.load(Ordering::Relaxed),
        start_failures: START_FAILURES.load(Ordering::Relaxed),
        exits_shutdown: exits(0),
        exits_reset: exits(1),
        exits_triple_fault: exits(2),
        exits_kvm_error: exits(3),
        exits_host_stop: exits(4),
        exits_timeout: exits(5),
    }
}

pub(crate) fn vm_started() {
    VMS_STARTED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn start_failed() {
    START_FAILURES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn vm_exited(reason: &ExitReason) {
    let slot = match reason {
        ExitReason::Shutdown => 0,
        ExitReason::Reset => 1,
        ExitReason::TripleFault { .. } => 2,
        ExitReason::EmulationFailure { .. } | ExitReason::InternalError { .. } => 3,
        ExitReason::HostStop => 4,
        ExitReason::Timeout => 5,
    };
    EXITS[slot].fetch_add(1, Ordering::Relaxed);
}
