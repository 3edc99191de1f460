//! The processes of a sandbox: a container's own (from `podvisor_sandbox_start`) or one exec'd
//! into a running container. A host polls a process's output chunk by chunk, writes its stdin,
//! signals it and waits for its exit status.
//!
//! A process handle subscribes to the process's events before it starts, so it sees every byte.
//! Output the host has not read yet is kept until read or the handle is freed, also while the
//! host waits for the exit.

use std::collections::VecDeque;
use std::ffi::c_char;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use ::podvisor_sandbox::{ExitStatus, ProcessEvent, ProcessRef, Sandbox, Stream};

use super::config::{exec_spec, podvisor_exec_options};
use super::{podvisor_sandbox, sandbox_error, with_container};
use crate::boundary::{Out, arg_bytes, arg_deadline_ms, call, malloc_bytes};
use crate::error::{FfiError, FfiResult, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Options, ResultOut};
use podvisor_error_code::*;

/// A process in a sandbox. Created by `podvisor_sandbox_start` or `podvisor_sandbox_exec`,
/// freed by `podvisor_process_free`.
pub struct podvisor_process {
    _private: [u8; 0],
}

/// Which output stream a chunk came from.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_stream {
    /// Standard output.
    PODVISOR_STREAM_STDOUT = 1,
    /// Standard error.
    PODVISOR_STREAM_STDERR = 2,
}

/// How a process ended. Initialise with `podvisor_exit_status_init`; libpodvisor fills it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_exit_status {
    /// `sizeof(podvisor_exit_status)`, set by `podvisor_exit_status_init`.
    pub struct_size: usize,
    /// Whether a signal ended the process; then `signal` says which, else `code` holds its
    /// exit code.
    pub signaled: bool,
    /// The exit code, when it exited; 0 otherwise.
    pub code: i32,
    /// The signal that ended it, when one did; 0 otherwise.
    pub signal: i32,
    /// Whether the kernel killed it because its container ran out of memory.
    pub oom_killed: bool,
}

// SAFETY: repr(C), starts with `struct_size: usize`. A result struct: not `Input`, so nothing
// but `struct_size` is ever read of the host's, whose bool fields may hold any bytes.
unsafe impl Options for podvisor_exit_status {
    const NAME: &'static str = "podvisor_exit_status";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_exit_status>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            signaled: false,
            code: 0,
            signal: 0,
            oom_killed: false,
        }
    }
}

/// The events of one process as the host consumes them.
struct Events {
    rx: Receiver<ProcessEvent>,
    /// Output that arrived while the host waited for the exit, not yet read.
    unread: VecDeque<(Stream, Vec<u8>)>,
    exit: Option<ExitStatus>,
}

/// What a `podvisor_process` holds.
pub(crate) struct ProcessObject {
    sandbox: Weak<Sandbox>,
    process: ProcessRef,
    events: Mutex<Events>,
}

impl Opaque for podvisor_process {
    type Object = ProcessObject;
    const NAME: &'static str = "podvisor_process";
}

impl ProcessObject {
    /// The sandbox, for the duration of one call; `PODVISOR_ESTATE` once destroyed.
    fn live(&self) -> FfiResult<Arc<Sandbox>> {
        self.sandbox.upgrade().ok_or_else(|| {
            FfiError::new(PODVISOR_ESTATE, "the sandbox of this process was destroyed")
        })
    }
}

impl Events {
    /// Takes the next event, waiting until `deadline` (`None`: forever).
    fn next(&mut self, deadline: Option<Instant>) -> FfiResult<ProcessEvent> {
        let received = match deadline {
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now())),
        };
        match received {
            Ok(ProcessEvent::Exited(status)) => {
                self.exit = Some(status);
                Ok(ProcessEvent::Exited(status))
            }
            Ok(event) => Ok(event),
            Err(RecvTimeoutError::Timeout) => Err(FfiError::new(
                PODVISOR_ETIMEOUT,
                "the process neither wrote nor exited in time",
            )),
            Err(RecvTimeoutError::Disconnected) => Err(FfiError::new(
                PODVISOR_EUNAVAILABLE,
                "the sandbox's agent went away before the process exited",
            )),
        }
    }
}

/// Registers a handle on `process`, whose events `events` already receives.
pub(super) fn register(
    sandbox: &Arc<Sandbox>,
    process: ProcessRef,
    events: Receiver<ProcessEvent>,
) -> *mut podvisor_process {
    handle::register::<podvisor_process>(ProcessObject {
        sandbox: Arc::downgrade(sandbox),
        process,
        events: Mutex::new(Events {
            rx: events,
            unread: VecDeque::new(),
            exit: None,
        }),
    })
}

/// An exit status argument that may be NULL, checked before the call does anything.
pub(super) struct ExitOut {
    slot: Option<ResultOut<podvisor_exit_status>>,
}

impl ExitOut {
    /// Writes `status`, unless the argument was NULL.
    pub(super) fn set(self, status: ExitStatus) {
        let Some(slot) = self.slot else {
            return;
        };
        let (signaled, code, signal, oom_killed) = match status {
            ExitStatus::Code(code) => (false, code, 0, false),
            ExitStatus::Signal { signal, oom_killed } => (true, 0, signal, oom_killed),
        };
        let filled = podvisor_exit_status {
            signaled,
            code,
            signal,
            oom_killed,
            ..podvisor_exit_status::defaults()
        };
        slot.set(filled);
    }
}

/// Checks an optional exit status argument: its alignment and its size, nothing else.
///
/// # Safety
/// `exit` is NULL or readable and writable for its `struct_size`.
pub(super) unsafe fn exit_out(exit: *mut podvisor_exit_status) -> FfiResult<ExitOut> {
    // SAFETY: forwarded contract.
    let slot = unsafe { ResultOut::optional(exit, "exit") }?;
    Ok(ExitOut { slot })
}

/// Fills `exit` with a zero exit code and sets its `struct_size`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `exit` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_exit_status_init(
    exit: *mut podvisor_exit_status,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `exit` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(exit, struct_size, "exit") })
}

/// Runs another process in a running container, and returns a handle on it.
///
/// - `sandbox`: borrowed.
/// - `container`: the container's name; borrowed for the call.
/// - `opts`: initialised with `podvisor_exec_options_init`, `args` set; it, its strings and
///   arrays are borrowed for the call.
/// - `process`: receives the process handle, owned by the caller, freed with
///   `podvisor_process_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox`, `container`, `opts`, `opts->args` or
/// `process` is NULL (or an array holds NULL); `PODVISOR_EUTF8` for a string that is not UTF-8;
/// `PODVISOR_EINVAL` for an unknown `struct_size`, no arguments, or an empty string;
/// `PODVISOR_EHANDLE` for a bad `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container;
/// `PODVISOR_ESTATE` if it does not run or the sandbox was destroyed;
/// `PODVISOR_EUNAVAILABLE` if the agent is gone. A program that cannot be run (not found, not
/// executable, a bad `cwd` or user) is not an error of this call: as in a shell, the process
/// exits with 127 (not found) or 126, and says why on its stderr.
///
/// Blocks: until the agent has started the process (milliseconds). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_exec(
    sandbox: *const podvisor_sandbox,
    container: *const c_char,
    opts: *const podvisor_exec_options,
    process: *mut *mut podvisor_process,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `opts` is NULL or valid as the header documents, `process` NULL or writable.
        let (spec, out) = unsafe { (exec_spec(opts)?, Out::new(process, "process")?) };
        // SAFETY: `container` is NULL or NUL-terminated (contract).
        unsafe {
            with_container(sandbox, container, |live, object, container| {
                let exec_id = format!("exec-{}", object.next_exec.fetch_add(1, Ordering::Relaxed));
                let exec = ProcessRef::exec(container, &exec_id);
                // Subscribed before the exec, so no output is missed.
                let events = live.subscribe(&exec);
                live.exec(container, &exec_id, spec)
                    .map_err(|e| sandbox_error(&e))?;
                out.set(register(live, exec, events));
                Ok(())
            })
        }
    })
}

/// Takes the next chunk of the process's output, from stdout or stderr in the order the
/// process wrote them.
///
/// - `process`: borrowed.
/// - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
/// - `stream`: receives which stream the chunk came from.
/// - `data`: receives a NUL-terminated buffer owned by the caller, freed with `podvisor_free`.
/// - `len`: receives the chunk's length in bytes, without the NUL (never 0).
///
/// Returns `PODVISOR_OK` with a chunk; `PODVISOR_EDONE` once the process has exited and all
/// its output was read (`podvisor_process_wait` then gives its status at once);
/// `PODVISOR_ETIMEOUT` if nothing came in time; `PODVISOR_ENULL` if an argument is NULL;
/// `PODVISOR_EINVAL` for a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad
/// `process`; `PODVISOR_EUNAVAILABLE` if the sandbox's agent went away first.
///
/// Blocks: yes, up to the timeout. Threads: any; reads and waits of one process are
/// serialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_process_read(
    process: *const podvisor_process,
    timeout_ms: i64,
    stream: *mut podvisor_stream,
    data: *mut *mut u8,
    len: *mut usize,
) -> podvisor_error_code {
    call(|| {
        let process = handle::get(process, "process")?;
        // SAFETY: the out-pointers are NULL or writable (contract).
        let (stream, data, len) = unsafe {
            (
                Out::new(stream, "stream")?,
                Out::new(data, "data")?,
                Out::new(len, "len")?,
            )
        };
        let deadline = arg_deadline_ms(timeout_ms, "timeout_ms")?;
        let mut events = process.events.lock().unwrap_or_else(|p| p.into_inner());
        let (from, chunk) = match events.unread.pop_front() {
            Some(unread) => unread,
            None if events.exit.is_some() => return Err(done()),
            None => match events.next(deadline)? {
                ProcessEvent::Output(from, chunk) => (from, chunk),
                ProcessEvent::Exited(_) => return Err(done()),
            },
        };
        let buffer = match malloc_bytes(&chunk) {
            Ok(buffer) => buffer,
            Err(err) => {
                // Kept for the next read: a failed call takes nothing.
                events.unread.push_front((from, chunk));
                return Err(err);
            }
        };
        data.set(buffer);
        len.set(chunk.len());
        stream.set(match from {
            Stream::Stdout => podvisor_stream::PODVISOR_STREAM_STDOUT,
            Stream::Stderr => podvisor_stream::PODVISOR_STREAM_STDERR,
        });
        Ok(())
    })
}

fn done() -> FfiError {
    FfiError::new(
        PODVISOR_EDONE,
        "the process has exited and all its output was read",
    )
}

/// Waits for the process to exit and reports how it ended. Output that arrives meanwhile is
/// kept for `podvisor_process_read`.
///
/// - `process`: borrowed.
/// - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
/// - `exit`: initialised with `podvisor_exit_status_init`, filled on success; or NULL.
///
/// Returns `PODVISOR_OK` once it exited (also on every later call); `PODVISOR_ETIMEOUT` if it
/// still runs; `PODVISOR_ENULL` if `process` is NULL; `PODVISOR_EINVAL` for a negative timeout
/// other than -1 or an unknown `exit->struct_size`; `PODVISOR_EHANDLE` for a bad `process`;
/// `PODVISOR_EUNAVAILABLE` if the sandbox's agent went away first.
///
/// Blocks: yes, up to the timeout. Threads: any; reads and waits of one process are
/// serialised, while `podvisor_process_signal` and the stdin calls go through at any time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_process_wait(
    process: *const podvisor_process,
    timeout_ms: i64,
    exit: *mut podvisor_exit_status,
) -> podvisor_error_code {
    call(|| {
        let process = handle::get(process, "process")?;
        // SAFETY: `exit` is NULL or readable and writable for its `struct_size` (contract).
        let exit = unsafe { exit_out(exit) }?;
        let deadline = arg_deadline_ms(timeout_ms, "timeout_ms")?;
        let mut events = process.events.lock().unwrap_or_else(|p| p.into_inner());
        let status = loop {
            if let Some(status) = events.exit {
                break status;
            }
            if let ProcessEvent::Output(from, chunk) = events.next(deadline)? {
                events.unread.push_back((from, chunk));
            }
        };
        exit.set(status);
        Ok(())
    })
}

/// Writes bytes to the process's stdin (it must have been created with `stdin` set).
///
/// - `process`: borrowed.
/// - `input`, `input_len`: the bytes; NULL is allowed with length 0.
///
/// Returns `PODVISOR_OK` once the agent took them; `PODVISOR_ENULL` if `process` is NULL, or
/// `input` is NULL with a non-zero length; `PODVISOR_EHANDLE` for a bad `process`;
/// `PODVISOR_ENOTFOUND` if the process is gone; `PODVISOR_ESTATE` if it takes no stdin, its stdin
/// was closed, or the sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
///
/// Blocks: until the agent took the bytes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_process_write_stdin(
    process: *const podvisor_process,
    input: *const u8,
    input_len: usize,
) -> podvisor_error_code {
    call(|| {
        let process = handle::get(process, "process")?;
        // SAFETY: `input` is NULL or readable for `input_len` bytes (contract).
        let input = unsafe { arg_bytes(input, input_len, "input") }?;
        let live = process.live()?;
        live.write_stdin(&process.process, input)
            .map_err(|e| sandbox_error(&e))
    })
}

/// Closes the process's stdin: it reads end of file after the bytes already written.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `process` is NULL; `PODVISOR_EHANDLE` for a bad
/// `process`; `PODVISOR_ENOTFOUND` if the process is gone; `PODVISOR_ESTATE` if it takes no
/// stdin, or the sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
///
/// Blocks: until the agent answers (milliseconds). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_process_close_stdin(
    process: *const podvisor_process,
) -> podvisor_error_code {
    call(|| {
        let process = handle::get(process, "process")?;
        let live = process.live()?;
        live.close_stdin(&process.process)
            .map_err(|e| sandbox_error(&e))
    })
}

/// Sends a signal to the process.
///
/// - `process`: borrowed.
/// - `signo`: the signal number, 1 to 64 (`SIGTERM`, `SIGKILL`, ...).
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `process` is NULL; `PODVISOR_EINVAL` for a
/// signal number out of range; `PODVISOR_EHANDLE` for a bad `process`; `PODVISOR_ENOTFOUND` or
/// `PODVISOR_ESTATE` if the process is gone or has exited, or the sandbox was destroyed;
/// `PODVISOR_EUNAVAILABLE` if the agent is gone.
///
/// Blocks: until the agent answers (milliseconds). Threads: any, also while another thread
/// waits for the process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_process_signal(
    process: *const podvisor_process,
    signo: i32,
) -> podvisor_error_code {
    call(|| {
        let process = handle::get(process, "process")?;
        if !(1..=64).contains(&signo) {
            return Err(FfiError::arg(
                PODVISOR_EINVAL,
                "signo",
                format!("signo {signo} is not a signal number (1 to 64)"),
            ));
        }
        let live = process.live()?;
        live.signal(&process.process, signo)
            .map_err(|e| sandbox_error(&e))
    })
}

/// Frees a process handle. The process itself is not signalled: it runs on until it exits or
/// its container is stopped; its unread output is dropped. NULL does nothing.
///
/// Ownership: takes `process`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_process_free(
    process: *mut podvisor_process,
) -> podvisor_error_code {
    call(|| handle::release(process.cast_const(), "process").map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    /// Long enough for events already sent, short enough for a test.
    const SHORT: Duration = Duration::from_millis(5);

    fn events_of(sent: Vec<ProcessEvent>) -> Events {
        let (tx, rx) = channel();
        for event in sent {
            tx.send(event).expect("the receiver is alive");
        }
        Events {
            rx,
            unread: VecDeque::new(),
            exit: None,
        }
    }

    #[test]
    fn test_events_record_the_exit_and_report_a_silent_process_as_timeout() {
        let mut events = events_of(vec![
            ProcessEvent::Output(Stream::Stdout, b"hi".to_vec()),
            ProcessEvent::Exited(ExitStatus::Code(3)),
        ]);
        let deadline = Some(Instant::now() + SHORT);
        assert!(matches!(
            events.next(deadline),
            Ok(ProcessEvent::Output(Stream::Stdout, _))
        ));
        assert!(matches!(events.next(deadline), Ok(ProcessEvent::Exited(_))));
        assert_eq!(events.exit, Some(ExitStatus::Code(3)));
        // The sender is gone: the agent connection ended.
        assert_eq!(
            events.next(deadline).map_err(|e| e.code).err(),
            Some(PODVISOR_EUNAVAILABLE)
        );

        let (_tx, rx) = channel::<ProcessEvent>();
        let mut silent = Events {
            rx,
            unread: VecDeque::new(),
            exit: None,
        };
        assert_eq!(
            silent
                .next(Some(Instant::now() + SHORT))
                .map_err(|e| e.code)
                .err(),
            Some(PODVISOR_ETIMEOUT)
        );
    }
}
