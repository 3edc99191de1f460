//! The error codes every entry point returns, and the thread-local last error.
//!
//! Each call that returns a [`podvisor_error_code`] first clears the calling thread's last error,
//! then records one when it fails: the code, a message that says what failed and with which
//! input, and the name of the failing argument when one argument is to blame. The accessors read
//! it back without changing it.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::ptr;

/// The result of every fallible libpodvisor call.
///
/// `PODVISOR_OK` (zero) is success; every failure is negative. The values are part of the ABI:
/// a code keeps its number forever, and new codes are only ever added at the end. A host should
/// treat an unknown negative code like `PODVISOR_ERROR`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_error_code {
    /// Success.
    PODVISOR_OK = 0,
    /// A failure that fits no other code; the message says what happened.
    PODVISOR_ERROR = -1,
    /// A pointer argument that must not be NULL was NULL.
    PODVISOR_ENULL = -2,
    /// A string argument was not valid UTF-8.
    PODVISOR_EUTF8 = -3,
    /// An argument had a value the call does not accept: an embedded NUL, an empty or too long
    /// string, a number out of range, an options struct with a `struct_size` the library does
    /// not know, or text that does not parse.
    PODVISOR_EINVAL = -4,
    /// A handle was of the wrong type or had already been freed.
    PODVISOR_EHANDLE = -5,
    /// libpodvisor hit an internal bug (a Rust panic). It was caught at the boundary; the
    /// message holds the panic's text. The handles involved may be unusable.
    PODVISOR_EPANIC = -6,
    /// The thing asked for does not exist: a key, an object, a lease, a file.
    PODVISOR_ENOTFOUND = -7,
    /// The thing to create already exists.
    PODVISOR_EEXISTS = -8,
    /// The object is in a state that does not allow the call (already stopped, still running,
    /// a callback already registered by someone else).
    PODVISOR_ESTATE = -9,
    /// The call gave up after its timeout.
    PODVISOR_ETIMEOUT = -10,
    /// The peer (a master, the leader, an agent) could not be reached or is not serving.
    PODVISOR_EUNAVAILABLE = -11,
    /// An operating system call failed; the message holds the OS error.
    PODVISOR_EOS = -12,
    /// The host does not support what was asked (no KVM, no hardware-assisted virtualization,
    /// an isolation level this host cannot provide).
    PODVISOR_EUNSUPPORTED = -13,
    /// The revision asked for has been compacted away.
    PODVISOR_ECOMPACTED = -14,
    /// A compare-and-set or update lost a race with another writer.
    PODVISOR_ECONFLICT = -15,
    /// Not an error: an iteration or a poll has nothing (more) to return.
    PODVISOR_EDONE = -16,
}

impl podvisor_error_code {
    /// Every code, in the order of the enum.
    pub const fn all() -> [podvisor_error_code; 17] {
        [
            Self::PODVISOR_OK,
            Self::PODVISOR_ERROR,
            Self::PODVISOR_ENULL,
            Self::PODVISOR_EUTF8,
            Self::PODVISOR_EINVAL,
            Self::PODVISOR_EHANDLE,
            Self::PODVISOR_EPANIC,
            Self::PODVISOR_ENOTFOUND,
            Self::PODVISOR_EEXISTS,
            Self::PODVISOR_ESTATE,
            Self::PODVISOR_ETIMEOUT,
            Self::PODVISOR_EUNAVAILABLE,
            Self::PODVISOR_EOS,
            Self::PODVISOR_EUNSUPPORTED,
            Self::PODVISOR_ECOMPACTED,
            Self::PODVISOR_ECONFLICT,
            Self::PODVISOR_EDONE,
        ]
    }

    /// The code's name, as it is spelled in the header, NUL-terminated.
    pub const fn name(self) -> &'static std::ffi::CStr {
        match self {
            Self::PODVISOR_OK => c"PODVISOR_OK",
            Self::PODVISOR_ERROR => c"PODVISOR_ERROR",
            Self::PODVISOR_ENULL => c"PODVISOR_ENULL",
            Self::PODVISOR_EUTF8 => c"PODVISOR_EUTF8",
            Self::PODVISOR_EINVAL => c"PODVISOR_EINVAL",
            Self::PODVISOR_EHANDLE => c"PODVISOR_EHANDLE",
            Self::PODVISOR_EPANIC => c"PODVISOR_EPANIC",
            Self::PODVISOR_ENOTFOUND => c"PODVISOR_ENOTFOUND",
            Self::PODVISOR_EEXISTS => c"PODVISOR_EEXISTS",
            Self::PODVISOR_ESTATE => c"PODVISOR_ESTATE",
            Self::PODVISOR_ETIMEOUT => c"PODVISOR_ETIMEOUT",
            Self::PODVISOR_EUNAVAILABLE => c"PODVISOR_EUNAVAILABLE",
            Self::PODVISOR_EOS => c"PODVISOR_EOS",
            Self::PODVISOR_EUNSUPPORTED => c"PODVISOR_EUNSUPPORTED",
            Self::PODVISOR_ECOMPACTED => c"PODVISOR_ECOMPACTED",
            Self::PODVISOR_ECONFLICT => c"PODVISOR_ECONFLICT",
            Self::PODVISOR_EDONE => c"PODVISOR_EDONE",
        }
    }
}

/// A failure on its way to the boundary: the code, the message, and the argument to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfiError {
    /// The code the entry point returns.
    pub code: podvisor_error_code,
    /// What failed and with which input.
    pub message: String,
    /// The failing argument's name as the header spells it (`opts->kernel_path`), if one is to
    /// blame.
    pub argument: Option<&'static str>,
}

impl FfiError {
    /// A failure not tied to one argument.
    pub fn new(code: podvisor_error_code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            argument: None,
        }
    }

    /// A failure caused by the argument `argument`.
    pub fn arg(
        code: podvisor_error_code,
        argument: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            argument: Some(argument),
        }
    }

    /// An OS error, with what was being done when it happened.
    pub fn os(what: &str, err: &std::io::Error) -> Self {
        let code = match err.kind() {
            std::io::ErrorKind::NotFound => podvisor_error_code::PODVISOR_ENOTFOUND,
            std::io::ErrorKind::TimedOut => podvisor_error_code::PODVISOR_ETIMEOUT,
            _ => podvisor_error_code::PODVISOR_EOS,
        };
        Self::new(code, format!("{what}: {err}"))
    }
}

/// Formats an error with its sources, outermost first: `cannot start: kernel x: not found`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The result type of everything between the boundary and the wrapped crates.
pub type FfiResult<T> = Result<T, FfiError>;

/// The calling thread's last error, kept as C strings so the accessors can hand out pointers.
struct LastError {
    code: podvisor_error_code,
    message: Option<CString>,
    argument: Option<CString>,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const {
        RefCell::new(LastError { code: podvisor_error_code::PODVISOR_OK, message: None, argument: None })
    };
}

/// Runs `f` on the calling thread's last error, unless it cannot be reached: while the thread
/// exits, after its thread-locals were destroyed, or (never in practice) while another access
/// holds it. Nothing here panics, so the accessors below cannot unwind into C.
fn with_last_error<R>(f: impl FnOnce(&mut LastError) -> R) -> Option<R> {
    LAST_ERROR
        .try_with(|last| last.try_borrow_mut().ok().map(|mut last| f(&mut last)))
        .ok()
        .flatten()
}

/// Forgets the calling thread's last error; every entry point does this first.
pub(crate) fn clear_last_error() {
    with_last_error(|last| {
        last.code = podvisor_error_code::PODVISOR_OK;
        last.message = None;
        last.argument = None;
    });
}

/// Records `err` as the calling thread's last error. While the thread exits, when its last
/// error is gone, nothing is recorded.
pub(crate) fn set_last_error(err: &FfiError) {
    // An interior NUL cannot reach C; it is replaced so the rest of the message survives.
    let to_c = |text: &str| CString::new(text.replace('\0', "\\0")).ok();
    let message = to_c(&err.message);
    let argument = err.argument.and_then(to_c);
    with_last_error(|last| {
        last.code = err.code;
        last.message = message;
        last.argument = argument;
    });
}

/// Returns the code of the last failed call on the calling thread, or `PODVISOR_OK` if the most
/// recent call that returns a `podvisor_error_code` succeeded.
///
/// A call made while the thread exits (from a thread-local destructor run after libpodvisor's
/// own) still returns its code, but keeps no last error: this then returns `PODVISOR_OK`.
///
/// Blocks: no. Threads: any; each thread has its own last error.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_last_error_code() -> podvisor_error_code {
    with_last_error(|last| last.code).unwrap_or(podvisor_error_code::PODVISOR_OK)
}

/// Returns the message of the last failed call on the calling thread, or NULL if the most recent
/// call that returns a `podvisor_error_code` succeeded (or, as for `podvisor_last_error_code`,
/// the thread is exiting).
///
/// Ownership: the string is owned by libpodvisor and stays valid until the next call on this
/// thread that returns a `podvisor_error_code`. Do not free it.
///
/// Blocks: no. Threads: any; each thread has its own last error.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_last_error_message() -> *const c_char {
    with_last_error(|last| last.message.as_ref().map_or(ptr::null(), |m| m.as_ptr()))
        .unwrap_or(ptr::null())
}

/// Returns the name of the argument that made the last call on the calling thread fail, as the
/// header spells it (for example `"opts->kernel_path"`), or NULL if no single argument was to
/// blame, the call succeeded, or the thread is exiting.
///
/// Ownership: as for `podvisor_last_error_message`.
///
/// Blocks: no. Threads: any; each thread has its own last error.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_last_error_argument() -> *const c_char {
    with_last_error(|last| last.argument.as_ref().map_or(ptr::null(), |a| a.as_ptr()))
        .unwrap_or(ptr::null())
}

/// Clears the calling thread's last error.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_last_error_clear() {
    clear_last_error();
}

/// Returns the name of `code` as a static string (`"PODVISOR_EINVAL"`), or `"PODVISOR_UNKNOWN"`
/// for a value that is not a code of this version of the library.
///
/// Ownership: the string is static; do not free it.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub extern "C" fn podvisor_error_name(code: i32) -> *const c_char {
    podvisor_error_code::all()
        .iter()
        .find(|known| **known as i32 == code)
        .map_or(c"PODVISOR_UNKNOWN".as_ptr(), |known| known.name().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn test_codes_are_numbered_in_order() {
        for (i, code) in podvisor_error_code::all().iter().enumerate() {
            assert_eq!(*code as i32, -(i as i32));
        }
    }

    #[test]
    fn test_last_error_round_trips_and_clears() {
        set_last_error(&FfiError::arg(
            podvisor_error_code::PODVISOR_EINVAL,
            "key",
            "bad\0key",
        ));
        assert_eq!(
            podvisor_last_error_code(),
            podvisor_error_code::PODVISOR_EINVAL
        );
        // SAFETY: the pointers come from the accessors and stay valid until the next clear.
        let (message, argument) = unsafe {
            (
                CStr::from_ptr(podvisor_last_error_message()),
                CStr::from_ptr(podvisor_last_error_argument()),
            )
        };
        assert_eq!(message.to_str(), Ok("bad\\0key"));
        assert_eq!(argument.to_str(), Ok("key"));
        podvisor_last_error_clear();
        assert!(podvisor_last_error_message().is_null());
        assert_eq!(podvisor_last_error_code(), podvisor_error_code::PODVISOR_OK);
    }

    #[test]
    fn test_calls_and_accessors_do_not_panic_once_the_last_error_is_destroyed() {
        use podvisor_error_code::*;
        use std::sync::{Arc, Mutex};

        type Seen = Arc<Mutex<Option<(bool, podvisor_error_code, podvisor_error_code, bool)>>>;
        /// Calls libpodvisor from a thread-local destructor that runs after LAST_ERROR's.
        struct AtExit(Seen);
        impl Drop for AtExit {
            fn drop(&mut self) {
                let gone = LAST_ERROR.try_with(|_| ()).is_err();
                let code = crate::boundary::call(|| Err(FfiError::new(PODVISOR_EINVAL, "late")));
                let last = podvisor_last_error_code();
                let no_message = podvisor_last_error_message().is_null()
                    && podvisor_last_error_argument().is_null();
                podvisor_last_error_clear();
                if let Ok(mut seen) = self.0.lock() {
                    *seen = Some((gone, code, last, no_message));
                }
            }
        }
        thread_local! {
            static AT_EXIT: RefCell<Option<AtExit>> = const { RefCell::new(None) };
        }

        let seen = Seen::default();
        let theirs = Arc::clone(&seen);
        let exited = std::thread::spawn(move || {
            // Thread-locals are destroyed in the reverse order of their first use: this one
            // after LAST_ERROR.
            AT_EXIT.with(|slot| *slot.borrow_mut() = Some(AtExit(theirs)));
            set_last_error(&FfiError::new(PODVISOR_ERROR, "before the exit"));
        })
        .join();
        assert!(exited.is_ok(), "the thread exits without a panic");
        let seen = *seen.lock().expect("not poisoned");
        assert_eq!(seen, Some((true, PODVISOR_EINVAL, PODVISOR_OK, true)));
    }

    #[test]
    fn test_error_name_knows_every_code_and_marks_unknown_ones() {
        for code in podvisor_error_code::all() {
            // SAFETY: podvisor_error_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(podvisor_error_name(code as i32)) };
            assert_eq!(name, code.name());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(podvisor_error_name(-1000)) };
        assert_eq!(unknown.to_str(), Ok("PODVISOR_UNKNOWN"));
    }
}
