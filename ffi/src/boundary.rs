//! The boundary every entry point goes through.
//!
//! [`call`] runs the body of an entry point under `catch_unwind`: it clears the thread's last
//! error first and records one when the body fails, and neither step, nor the body, can unwind
//! into C. The argument checks below turn raw C arguments into Rust values, or into an
//! [`FfiError`] that names the argument: NULL pointers, misaligned pointers, invalid UTF-8 and
//! embedded NULs never get past them.

use std::any::Any;
use std::ffi::{CStr, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::time::{Duration, Instant};

use crate::error::{FfiError, FfiResult, clear_last_error, podvisor_error_code, set_last_error};
use podvisor_error_code::*;

/// The longest string libpodvisor accepts through a NUL-terminated argument, in bytes. Longer
/// ones fail with `PODVISOR_EINVAL`; text of any size goes through the length-taking calls.
pub const PODVISOR_MAX_STRING_LEN: usize = 65536;

/// Runs the body of an entry point: clears the last error, catches any panic, records a failure.
///
/// Everything runs under `catch_unwind`, the recording of a failure too (a `tracing`
/// subscriber may panic, and so may the drop of a panic's payload), so no unwind reaches C.
pub(crate) fn call(body: impl FnOnce() -> FfiResult<()>) -> podvisor_error_code {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        clear_last_error();
        body()
    }));
    let failure = match outcome {
        Ok(Ok(())) => return PODVISOR_OK,
        Ok(Err(err)) => Ok(err),
        Err(payload) => Err(payload),
    };
    let code = failure.as_ref().map_or(PODVISOR_EPANIC, |err| err.code);
    contain(|| match &failure {
        Ok(err) => record(err),
        Err(payload) => record(&panic_error(payload.as_ref())),
    });
    // The payload goes last, once the failure is recorded: its drop may panic too.
    contain(move || drop(failure));
    code
}

/// Runs `f`, stopping any panic in it. The panic's payload is forgotten, not dropped: its drop
/// could panic in turn, outside any barrier.
fn contain(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        std::mem::forget(payload);
    }
}

/// The failure a caught panic becomes: `PODVISOR_EPANIC` with the panic's message.
fn panic_error(payload: &(dyn Any + Send)) -> FfiError {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    FfiError::new(
        PODVISOR_EPANIC,
        format!("internal error in libpodvisor: {text}"),
    )
}

/// Makes a failure the thread's last error, then logs it.
fn record(err: &FfiError) {
    set_last_error(err);
    tracing::debug!(
        code = err.code.name().to_str().unwrap_or("?"),
        argument = err.argument,
        "{}",
        err.message
    );
}

/// Checks that `p` is not NULL and is aligned for `T`; nothing is read.
pub(crate) fn check_pointer<T>(p: *const T, name: &'static str) -> FfiResult<()> {
    if p.is_null() {
        return Err(FfiError::arg(
            PODVISOR_ENULL,
            name,
            format!("{name} is NULL"),
        ));
    }
    if !p.is_aligned() {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} is not aligned"),
        ));
    }
    Ok(())
}

/// Borrows the value behind a pointer argument.
///
/// # Safety
/// `p` must be NULL or point to a valid `T` for `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, name: &'static str) -> FfiResult<&'a T> {
    check_pointer(p, name)?;
    // SAFETY: non-NULL and aligned, checked above; validity is the caller's contract.
    Ok(unsafe { &*p })
}

/// An out-parameter, checked before the call does any work so a NULL one cannot make it leak
/// what it created.
pub(crate) struct Out<T> {
    slot: *mut T,
}

impl<T> Out<T> {
    /// Checks an out-pointer argument.
    ///
    /// # Safety
    /// `p` must be NULL or valid for writing a `T` until [`Out::set`] is called.
    pub(crate) unsafe fn new(p: *mut T, name: &'static str) -> FfiResult<Self> {
        check_pointer(p, name)?;
        Ok(Self { slot: p })
    }

    /// Writes the result; the previous contents are not dropped (they are C data).
    pub(crate) fn set(self, value: T) {
        // SAFETY: checked non-NULL and aligned in `new`, writable by the caller's contract.
        unsafe { self.slot.write(value) }
    }
}

/// An out-parameter that may be NULL (the caller does not want that value), checked like
/// [`Out`] before the call does any work, so a misaligned one fails before anything is done.
pub(crate) struct OptOut<T> {
    slot: Option<Out<T>>,
}

impl<T> OptOut<T> {
    /// Checks an optional out-pointer argument.
    ///
    /// # Safety
    /// `p` must be NULL or valid for writing a `T` until [`OptOut::set`] is called.
    pub(crate) unsafe fn new(p: *mut T, name: &'static str) -> FfiResult<Self> {
        let slot = if p.is_null() {
            None
        } else {
            // SAFETY: forwarded contract.
            Some(unsafe { Out::new(p, name) }?)
        };
        Ok(Self { slot })
    }

    /// Writes the result, unless the argument was NULL.
    pub(crate) fn set(self, value: T) {
        if let Some(slot) = self.slot {
            slot.set(value);
        }
    }
}

/// Reads a NUL-terminated UTF-8 string argument that must not be NULL.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &'static str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(FfiError::arg(
            PODVISOR_ENULL,
            name,
            format!("{name} is NULL"),
        ));
    }
    // SAFETY: non-NULL; NUL-termination and lifetime are the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.len() > PODVISOR_MAX_STRING_LEN {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!(
                "{name} is {} bytes long, more than the {PODVISOR_MAX_STRING_LEN} allowed",
                bytes.len()
            ),
        ));
    }
    utf8(bytes, name)
}

/// Reads a NUL-terminated UTF-8 string argument that may be NULL (meaning "not given").
///
/// # Safety
/// As for [`arg_str`].
pub(crate) unsafe fn arg_opt_str<'a>(
    p: *const c_char,
    name: &'static str,
) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { arg_str(p, name) }.map(Some)
}

/// Reads a NUL-terminated UTF-8 string argument that must be neither NULL nor empty.
///
/// # Safety
/// As for [`arg_str`].
pub(crate) unsafe fn arg_non_empty_str<'a>(
    p: *const c_char,
    name: &'static str,
) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    let s = unsafe { arg_str(p, name) }?;
    if s.is_empty() {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} is empty"),
        ));
    }
    Ok(s)
}

/// Reads a NUL-terminated UTF-8 string argument that may be NULL (meaning "not given"), but
/// not empty.
///
/// # Safety
/// As for [`arg_str`].
pub(crate) unsafe fn arg_opt_non_empty_str<'a>(
    p: *const c_char,
    name: &'static str,
) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { arg_non_empty_str(p, name) }.map(Some)
}

/// Reads an array of `len` NUL-terminated, non-empty UTF-8 strings; `len` must not be 0.
///
/// # Safety
/// `p` must be NULL or point to `len` pointers, each NULL or a NUL-terminated string.
pub(crate) unsafe fn arg_str_array<'a>(
    p: *const *const c_char,
    len: usize,
    name: &'static str,
) -> FfiResult<Vec<&'a str>> {
    if len == 0 {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} is empty"),
        ));
    }
    // SAFETY: checks NULL and alignment of the array.
    unsafe { arg_ref(p, name) }?;
    (0..len)
        .map(|i| {
            // SAFETY: `p` holds `len` pointers (contract); `i < len`.
            let item = unsafe { p.add(i).read() };
            // SAFETY: each item is NULL or NUL-terminated (contract).
            unsafe { arg_non_empty_str(item, name) }.map_err(|e| FfiError {
                message: format!("{name}[{i}]: {}", e.message),
                ..e
            })
        })
        .collect()
}

/// Reads a timeout argument in milliseconds: -1 waits forever (`None`), 0 or more that long.
pub(crate) fn arg_timeout_ms(timeout_ms: i64, name: &'static str) -> FfiResult<Option<Duration>> {
    match timeout_ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms.unsigned_abs()))),
        other => Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} is {other}: use -1 to wait forever or a count of milliseconds"),
        )),
    }
}

/// Reads a timeout argument as the deadline it sets, from now: `None` to wait forever, for -1
/// and for a timeout so long that the clock cannot represent its end.
pub(crate) fn arg_deadline_ms(timeout_ms: i64, name: &'static str) -> FfiResult<Option<Instant>> {
    Ok(arg_timeout_ms(timeout_ms, name)?.and_then(|timeout| Instant::now().checked_add(timeout)))
}

/// Reads a byte-buffer argument given as pointer and length. NULL is accepted with length 0.
///
/// # Safety
/// `p` must be NULL or valid for reading `len` bytes for `'a`.
pub(crate) unsafe fn arg_bytes<'a>(
    p: *const u8,
    len: usize,
    name: &'static str,
) -> FfiResult<&'a [u8]> {
    if p.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(FfiError::arg(
            PODVISOR_ENULL,
            name,
            format!("{name} is NULL with a length of {len}"),
        ));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} has an impossible length {len}"),
        ));
    }
    // SAFETY: non-NULL, length bounded; readability for `len` bytes is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Reads a UTF-8 text argument given as pointer and length: it may not contain NUL.
///
/// # Safety
/// As for [`arg_bytes`].
pub(crate) unsafe fn arg_text<'a>(
    p: *const c_char,
    len: usize,
    name: &'static str,
) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_bytes(p.cast::<u8>(), len, name) }?;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} holds a NUL byte at offset {at}"),
        ));
    }
    utf8(bytes, name)
}

fn utf8<'a>(bytes: &'a [u8], name: &'static str) -> FfiResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::arg(
            PODVISOR_EUTF8,
            name,
            format!(
                "{name} is not valid UTF-8 at byte offset {}",
                e.valid_up_to()
            ),
        )
    })
}

/// Copies `bytes` into a `malloc`ed, NUL-terminated buffer the host frees with `podvisor_free`.
pub(crate) fn malloc_bytes(bytes: &[u8]) -> FfiResult<*mut u8> {
    // SAFETY: malloc has no preconditions; the result is checked for NULL before use.
    let buf = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if buf.is_null() {
        return Err(FfiError::new(
            PODVISOR_ERROR,
            format!("out of memory allocating {} bytes", bytes.len() + 1),
        ));
    }
    // SAFETY: `buf` holds `len + 1` bytes and cannot overlap `bytes`, which Rust owns.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
        buf.add(bytes.len()).write(0);
    }
    Ok(buf)
}

/// Copies `text` into a `malloc`ed C string the host frees with `podvisor_free`.
pub(crate) fn malloc_string(text: &str) -> FfiResult<*mut c_char> {
    malloc_bytes(text.as_bytes()).map(|p| p.cast::<c_char>())
}

/// Frees memory that libpodvisor returned: strings, byte buffers and arrays. NULL is a no-op.
///
/// Ownership: takes ownership of `ptr`, which must have come from libpodvisor and not have been
/// freed already. Handles are not memory: free each with its own `*_free` function.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_free(ptr: *mut c_void) {
    // SAFETY: every buffer libpodvisor hands out for the host to free comes from malloc.
    unsafe { libc::free(ptr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_call_turns_a_panic_into_epanic_with_its_message() {
        let code = call(|| panic!("boom at the boundary"));
        assert_eq!(code, PODVISOR_EPANIC);
        // SAFETY: the message pointer is valid until the next call on this thread.
        let message = unsafe { CStr::from_ptr(crate::error::podvisor_last_error_message()) };
        assert!(message.to_string_lossy().contains("boom at the boundary"));
    }

    #[test]
    fn test_call_survives_a_panic_whose_payload_panics_when_dropped() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("the payload's drop panics too");
            }
        }
        let code = call(|| std::panic::panic_any(Bomb));
        assert_eq!(code, PODVISOR_EPANIC);
        assert_eq!(crate::error::podvisor_last_error_code(), PODVISOR_EPANIC);
    }

    #[test]
    fn test_call_clears_the_last_error_of_the_call_before() {
        assert_eq!(
            call(|| Err(FfiError::new(PODVISOR_ERROR, "first"))),
            PODVISOR_ERROR
        );
        assert_eq!(call(|| Ok(())), PODVISOR_OK);
        assert!(crate::error::podvisor_last_error_message().is_null());
    }

    #[test]
    fn test_arg_deadline_ms_waits_forever_for_minus_one_and_past_the_clocks_range() {
        assert_eq!(arg_deadline_ms(-1, "timeout_ms"), Ok(None));
        assert!(arg_deadline_ms(i64::MAX, "timeout_ms").is_ok());
        assert!(matches!(arg_deadline_ms(0, "timeout_ms"), Ok(Some(_))));
        assert_eq!(
            arg_deadline_ms(-2, "timeout_ms").map_err(|e| e.code),
            Err(PODVISOR_EINVAL)
        );
    }

    #[test]
    fn test_opt_out_fails_when_misaligned_and_writes_nothing_for_null() {
        let mut words = [0u64; 2];
        let misaligned = words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<u64>();
        // SAFETY: a misaligned pointer is refused before anything is written.
        let got = unsafe { OptOut::new(misaligned, "revision") }.map(|_| ());
        assert_eq!(
            got.map_err(|e| (e.code, e.argument)),
            Err((PODVISOR_EINVAL, Some("revision")))
        );
        // SAFETY: NULL is accepted and never written.
        let none = unsafe { OptOut::new(ptr::null_mut::<u64>(), "revision") };
        none.expect("NULL is allowed").set(7);
        // SAFETY: `words[0]` is a valid, aligned u64 for the duration of the call.
        let some = unsafe { OptOut::new(words.as_mut_ptr(), "revision") };
        some.expect("aligned").set(7);
        assert_eq!(words, [7, 0]);
    }

    #[test]
    fn test_arg_str_fails_when_null_or_invalid_utf8() {
        // SAFETY: NULL and a valid NUL-terminated literal.
        let null = unsafe { arg_str(ptr::null(), "name") };
        assert_eq!(
            null.map_err(|e| (e.code, e.argument)),
            Err((PODVISOR_ENULL, Some("name")))
        );
        let bad = c"a\xffb";
        // SAFETY: a NUL-terminated literal.
        let bad = unsafe { arg_str(bad.as_ptr(), "name") };
        assert_eq!(bad.map_err(|e| e.code), Err(PODVISOR_EUTF8));
    }

    #[test]
    fn test_arg_text_fails_when_it_holds_a_nul() {
        let text = b"ab\0cd";
        // SAFETY: pointer and length describe `text`.
        let got = unsafe { arg_text(text.as_ptr().cast(), text.len(), "text") };
        assert_eq!(got.map_err(|e| e.code), Err(PODVISOR_EINVAL));
    }

    #[test]
    fn test_malloc_bytes_nul_terminates() {
        let p = malloc_bytes(b"xyz").expect("a small allocation succeeds");
        // SAFETY: `p` holds 4 bytes, and is freed once.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(p, 4), b"xyz\0");
            podvisor_free(p.cast());
        }
    }
}
