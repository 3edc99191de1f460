//! The log callback: the library's `tracing` records, delivered to the host.
//!
//! podvisor's crates log through `tracing` and never install a subscriber. When the host first
//! registers a callback, libpodvisor installs one process-wide subscriber that formats each event
//! at or above the chosen level and queues it; one delivery thread, which has an alternate signal
//! stack, calls the host's callback for each record in order. A host that never registers a
//! callback gets no subscriber, and a Rust host that has its own keeps it (registration then
//! fails with `PODVISOR_ESTATE`).

use std::ffi::{CString, c_char, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::boundary::call;
use crate::error::{FfiError, podvisor_error_code};

/// The severity of a log record; higher is more verbose.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_log_level {
    /// No records at all.
    PODVISOR_LOG_OFF = 0,
    /// Something failed.
    PODVISOR_LOG_ERROR = 1,
    /// Something unexpected that podvisor recovered from.
    PODVISOR_LOG_WARN = 2,
    /// A state change an operator cares about.
    PODVISOR_LOG_INFO = 3,
    /// Detail for debugging, including every failed libpodvisor call.
    PODVISOR_LOG_DEBUG = 4,
    /// Everything.
    PODVISOR_LOG_TRACE = 5,
}

/// One log record, valid only during the callback that receives it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_log_record {
    /// `sizeof(podvisor_log_record)` as this library knows it; fields past the size the host
    /// was built with are to be ignored.
    pub struct_size: usize,
    /// The record's severity.
    pub level: podvisor_log_level,
    /// The Rust module that emitted the record, NUL-terminated UTF-8.
    pub target: *const c_char,
    /// The message followed by the record's fields as ` key=value`, NUL-terminated UTF-8.
    pub message: *const c_char,
    /// The source file, or NULL if unknown.
    pub file: *const c_char,
    /// The source line, or 0 if unknown.
    pub line: u32,
}

/// Receives one log record on libpodvisor's log delivery thread.
///
/// `record` and its strings are owned by libpodvisor and valid only until the callback returns.
/// The callback must not unwind (no C++ exception, no `longjmp` out of it).
pub type podvisor_log_callback =
    Option<unsafe extern "C" fn(record: *const podvisor_log_record, userdata: *mut c_void)>;

/// The host's callback and its pointer.
#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(*const podvisor_log_record, *mut c_void),
    userdata: *mut c_void,
}

// SAFETY: `userdata` is the host's; by the documented contract of `podvisor_log_set_callback`
// it may be used from the delivery thread, which is the only place the Sink is called.
unsafe impl Send for Sink {}

/// A formatted record on its way to the delivery thread.
struct Queued {
    level: podvisor_log_level,
    target: CString,
    message: CString,
    file: Option<CString>,
    line: u32,
}

/// How many records may wait for delivery before new ones are dropped (and counted).
const QUEUE_DEPTH: usize = 4096;

struct Logger {
    queue: SyncSender<Queued>,
    sink: Mutex<Option<Sink>>,
    delivery_thread: ThreadId,
}

/// The verbosity the subscriber lets through, as a `podvisor_log_level`.
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);
/// Records dropped because the queue was full, reported with the next delivered record.
static DROPPED: AtomicU64 = AtomicU64::new(0);
static LOGGER: OnceLock<Result<Logger, FfiError>> = OnceLock::new();

fn lock_sink(logger: &Logger) -> MutexGuard<'_, Option<Sink>> {
    // The guarded value is a plain Copy pair, never left half-written.
    logger
        .sink
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn to_tracing(level: podvisor_log_level) -> LevelFilter {
    match level {
        podvisor_log_level::PODVISOR_LOG_OFF => LevelFilter::OFF,
        podvisor_log_level::PODVISOR_LOG_ERROR => LevelFilter::ERROR,
        podvisor_log_level::PODVISOR_LOG_WARN => LevelFilter::WARN,
        podvisor_log_level::PODVISOR_LOG_INFO => LevelFilter::INFO,
        podvisor_log_level::PODVISOR_LOG_DEBUG => LevelFilter::DEBUG,
        podvisor_log_level::PODVISOR_LOG_TRACE => LevelFilter::TRACE,
    }
}

fn from_tracing(level: Level) -> podvisor_log_level {
    match level {
        Level::ERROR => podvisor_log_level::PODVISOR_LOG_ERROR,
        Level::WARN => podvisor_log_level::PODVISOR_LOG_WARN,
        Level::INFO => podvisor_log_level::PODVISOR_LOG_INFO,
        Level::DEBUG => podvisor_log_level::PODVISOR_LOG_DEBUG,
        Level::TRACE => podvisor_log_level::PODVISOR_LOG_TRACE,
    }
}

fn max_level() -> LevelFilter {
    let level = match MAX_LEVEL.load(Ordering::Relaxed) {
        1 => podvisor_log_level::PODVISOR_LOG_ERROR,
        2 => podvisor_log_level::PODVISOR_LOG_WARN,
        3 => podvisor_log_level::PODVISOR_LOG_INFO,
        4 => podvisor_log_level::PODVISOR_LOG_DEBUG,
        5 => podvisor_log_level::PODVISOR_LOG_TRACE,
        _ => podvisor_log_level::PODVISOR_LOG_OFF,
    };
    to_tracing(level)
}

/// Formats an event's fields: the message first, then ` key=value` for each other field.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

fn c_text(text: String) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

/// The subscriber installed when the host registers a callback. It keeps no spans.
struct CallbackSubscriber;

impl Subscriber for CallbackSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level changes at run time, so every callsite is asked each time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= max_level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(max_level())
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(Ok(logger)) = LOGGER.get() else {
            return;
        };
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let queued = Queued {
            level: from_tracing(*metadata.level()),
            target: c_text(metadata.target().to_owned()),
            message: c_text(fields.message + fields.rest.as_str()),
            file: metadata.file().map(|f| c_text(f.to_owned())),
            line: metadata.line().unwrap_or(0),
        };
        if let Err(TrySendError::Full(_)) = logger.queue.try_send(queued) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn deliver(logger: &Logger, record: &podvisor_log_record) {
    // The sink stays locked during the call, so `podvisor_log_set_callback` returns only once no
    // call to the previous callback is in progress: the host may then free its userdata.
    let sink = lock_sink(logger);
    if let Some(sink) = *sink {
        // SAFETY: the host registered `callback` for exactly this; `record` and its strings live
        // until this statement ends.
        unsafe { (sink.callback)(record, sink.userdata) };
    }
}

fn delivery_loop(records: Receiver<Queued>) {
    while let Ok(queued) = records.recv() {
        let Some(Ok(logger)) = LOGGER.get() else {
            continue;
        };
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let message = c_text(format!(
                "libpodvisor dropped {dropped} log records: the callback is too slow"
            ));
            let record = podvisor_log_record {
                struct_size: size_of::<podvisor_log_record>(),
                level: podvisor_log_level::PODVISOR_LOG_WARN,
                target: c"podvisor".as_ptr(),
                message: message.as_ptr(),
                file: std::ptr::null(),
                line: 0,
            };
            deliver(logger, &record);
        }
        let record = podvisor_log_record {
            struct_size: size_of::<podvisor_log_record>(),
            level: queued.level,
            target: queued.target.as_ptr(),
            message: queued.message.as_ptr(),
            file: queued
                .file
                .as_ref()
                .map_or(std::ptr::null(), |f| f.as_ptr()),
            line: queued.line,
        };
        deliver(logger, &record);
    }
}

fn start_logger() -> Result<Logger, FfiError> {
    let (queue, records) = mpsc::sync_channel(QUEUE_DEPTH);
    tracing::subscriber::set_global_default(CallbackSubscriber).map_err(|_| {
        FfiError::new(
            podvisor_error_code::PODVISOR_ESTATE,
            "this process already has a global tracing subscriber; libpodvisor's records go there",
        )
    })?;
    let thread =
        crate::altstack::spawn_callback_thread("podvisor-log", move || delivery_loop(records))
            .map_err(|e| FfiError::os("starting the log delivery thread", &e))?;
    Ok(Logger {
        queue,
        sink: Mutex::new(None),
        delivery_thread: thread.thread().id(),
    })
}

/// Registers the callback that receives libpodvisor's log records, or removes it.
///
/// Records at `max_level` or more severe are formatted and queued; one library thread, which has
/// an alternate signal stack, calls `callback` for each, in order. If records arrive faster than
/// the callback takes them, up to 4096 wait and the rest are dropped; the next record delivered
/// is preceded by a `PODVISOR_LOG_WARN` record that counts them. With no callback registered
/// (the default), the library formats nothing.
///
/// - `callback`: the function to call, or NULL to stop delivery.
/// - `max_level`: the most verbose level to deliver; `PODVISOR_LOG_OFF` stops delivery.
/// - `userdata`: passed to every call of `callback`; libpodvisor never reads or frees it.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EINVAL` (argument `max_level`) for a value outside the enum;
/// `PODVISOR_ESTATE` if the process already has a global `tracing` subscriber (a Rust host with
/// its own), or if called from inside the log callback; `PODVISOR_EOS` if the delivery thread
/// could not start.
///
/// Blocks: until a call to the previous callback in progress returns, so after this returns the
/// previous `userdata` is no longer used. Threads: any, except the log delivery thread.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_log_set_callback(
    callback: podvisor_log_callback,
    max_level: i32,
    userdata: *mut c_void,
) -> podvisor_error_code {
    call(|| {
        let level = match max_level {
            0 => podvisor_log_level::PODVISOR_LOG_OFF,
            1 => podvisor_log_level::PODVISOR_LOG_ERROR,
            2 => podvisor_log_level::PODVISOR_LOG_WARN,
            3 => podvisor_log_level::PODVISOR_LOG_INFO,
            4 => podvisor_log_level::PODVISOR_LOG_DEBUG,
            5 => podvisor_log_level::PODVISOR_LOG_TRACE,
            other => {
                return Err(FfiError::arg(
                    podvisor_error_code::PODVISOR_EINVAL,
                    "max_level",
                    format!("max_level {other} is not a podvisor_log_level"),
                ));
            }
        };
        let sink = callback.map(|callback| Sink { callback, userdata });
        if sink.is_none() && LOGGER.get().is_none() {
            return Ok(());
        }
        let logger = LOGGER
            .get_or_init(start_logger)
            .as_ref()
            .map_err(Clone::clone)?;
        if std::thread::current().id() == logger.delivery_thread {
            return Err(FfiError::new(
                podvisor_error_code::PODVISOR_ESTATE,
                "podvisor_log_set_callback cannot be called from inside the log callback",
            ));
        }
        let mut current = lock_sink(logger);
        *current = sink;
        let level = if sink.is_some() {
            level
        } else {
            podvisor_log_level::PODVISOR_LOG_OFF
        };
        MAX_LEVEL.store(level as usize, Ordering::Relaxed);
        drop(current);
        tracing::callsite::rebuild_interest_cache();
        Ok(())
    })
}
