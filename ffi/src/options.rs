//! Structs that start with their size, so they can grow without breaking hosts.
//!
//! A host fills `struct_size` with `sizeof` the struct as its header declares it, through the
//! struct's init function. libpodvisor accepts every size a release of the struct has had, and
//! touches only the bytes that size covers. A size it does not know (garbage, or a header newer
//! than the library) is refused with `PODVISOR_EINVAL`.
//!
//! They come in two directions:
//!
//! - options structs ([`Input`]) the host fills and libpodvisor reads with [`read`]: the fields
//!   the size covers, defaults for the rest;
//! - result structs libpodvisor fills, through a [`ResultOut`]. Of those, only `struct_size` is
//!   ever read: their other fields hold enums and bools, and a host that sets nothing else (a
//!   stack struct, say) leaves bytes in them that are no valid Rust value.

use std::mem::{MaybeUninit, size_of};
use std::ptr;

use crate::boundary::check_pointer;
use crate::error::{FfiError, FfiResult, podvisor_error_code};

/// A struct of the C ABI that starts with its size: an options struct or a result struct.
///
/// # Safety
/// The type must be `#[repr(C)]` and start with a `usize` `struct_size` field.
pub(crate) unsafe trait Options: Copy + 'static {
    /// The C name, for messages.
    const NAME: &'static str;
    /// Every size a release of the struct has had, oldest first; the last is the current one.
    const KNOWN_SIZES: &'static [usize];
    /// The defaults the init function writes, with `struct_size` set to the current size.
    fn defaults() -> Self;
}

/// An options struct the host fills and libpodvisor reads.
///
/// # Safety
/// Every field other than those at [`Input::BOOL_FIELDS`] must accept any bit pattern C may
/// store in it (pointers and integers do; enums are passed as `int32_t` and checked), and
/// `BOOL_FIELDS` must list the offset of every `bool` field.
pub(crate) unsafe trait Input: Options {
    /// The offsets of the struct's `bool` fields. Each is read as a byte, and any non-zero byte
    /// is taken as true, so a host that stored something other than 0 or 1 there (C allows it
    /// through `memset` or a cast) cannot hand Rust an invalid `bool`.
    const BOOL_FIELDS: &'static [usize] = &[];
}

fn check_size<T: Options>(size: usize, name: &'static str) -> FfiResult<()> {
    if T::KNOWN_SIZES.contains(&size) && size <= size_of::<T>() {
        return Ok(());
    }
    Err(FfiError::arg(
        podvisor_error_code::PODVISOR_EINVAL,
        name,
        format!(
            "{name} has struct_size {size}, which is not the size of any {} this library knows \
             (it knows {:?}); initialise it with its init function",
            T::NAME,
            T::KNOWN_SIZES
        ),
    ))
}

/// Checks a struct argument's pointer and reads its `struct_size`, and nothing else.
///
/// # Safety
/// `p` must be NULL or point to at least `size_of::<usize>()` readable bytes.
unsafe fn checked_size<T: Options>(p: *const T, name: &'static str) -> FfiResult<usize> {
    check_pointer(p, name)?;
    // SAFETY: non-NULL and aligned for `T`, so for the `usize` it starts with (trait contract);
    // readable by the caller's contract. Every bit pattern is a valid `usize`.
    let size = unsafe { p.cast::<usize>().read() };
    check_size::<T>(size, name)?;
    Ok(size)
}

/// Reads an options argument: the fields its `struct_size` covers, defaults for the rest.
///
/// # Safety
/// `p` must be NULL or point to at least `struct_size` readable bytes that start with a `usize`.
pub(crate) unsafe fn read<T: Input>(p: *const T, name: &'static str) -> FfiResult<T> {
    // SAFETY: forwarded contract.
    let size = unsafe { checked_size(p, name) }?;
    let mut value = MaybeUninit::new(T::defaults());
    let bytes = value.as_mut_ptr().cast::<u8>();
    // SAFETY: `size` bytes are readable at `p` (caller's contract) and fit in `value` (checked
    // by `checked_size`); the two cannot overlap, `value` is a local.
    unsafe { ptr::copy_nonoverlapping(p.cast::<u8>(), bytes, size) };
    for &offset in T::BOOL_FIELDS.iter().filter(|&&offset| offset < size) {
        // SAFETY: `offset` is a field of `T`, so inside `value`; read and written as a byte,
        // which any bit pattern is.
        unsafe {
            let byte = bytes.add(offset);
            byte.write(u8::from(byte.read() != 0));
        }
    }
    // SAFETY: the defaults are a valid `T`; the bytes copied over them are valid for their
    // fields (`T: Input`), the bools among them now 0 or 1.
    Ok(unsafe { value.assume_init() })
}

/// Writes the defaults into a struct of `struct_size` bytes, for the init functions. Nothing of
/// the struct is read.
///
/// # Safety
/// `p` must be NULL or valid for writing `struct_size` bytes.
pub(crate) unsafe fn init<T: Options>(
    p: *mut T,
    struct_size: usize,
    name: &'static str,
) -> FfiResult<()> {
    check_pointer(p.cast_const(), name)?;
    check_size::<T>(struct_size, "struct_size")?;
    let mut value = T::defaults();
    let value_ptr = ptr::from_mut(&mut value).cast::<usize>();
    // SAFETY: `value` starts with its usize `struct_size` field (trait contract).
    unsafe { value_ptr.write(struct_size) };
    // SAFETY: `struct_size` bytes fit both `value` (checked) and `p` (caller's contract).
    unsafe {
        ptr::copy_nonoverlapping(
            ptr::from_ref(&value).cast::<u8>(),
            p.cast::<u8>(),
            struct_size,
        );
    }
    Ok(())
}

/// A result struct argument, checked before the call does any work: non-NULL, aligned, and of a
/// size this library knows. Only its `struct_size` was read.
pub(crate) struct ResultOut<T> {
    slot: *mut T,
    size: usize,
}

impl<T: Options> ResultOut<T> {
    /// Checks a result struct argument, reading its `struct_size` and nothing else.
    ///
    /// # Safety
    /// `p` must be NULL or valid for reading and writing its `struct_size` bytes until
    /// [`ResultOut::set`] is called.
    pub(crate) unsafe fn new(p: *mut T, name: &'static str) -> FfiResult<Self> {
        // SAFETY: forwarded contract.
        let size = unsafe { checked_size(p.cast_const(), name) }?;
        Ok(Self { slot: p, size })
    }

    /// As [`ResultOut::new`], for an argument that may be NULL (`None`: nothing to fill).
    ///
    /// # Safety
    /// As for [`ResultOut::new`].
    pub(crate) unsafe fn optional(p: *mut T, name: &'static str) -> FfiResult<Option<Self>> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: forwarded contract.
        unsafe { Self::new(p, name) }.map(Some)
    }

    /// Writes `value` back, only the `struct_size` bytes the host's struct has, with the host's
    /// `struct_size` kept so it reads back what it passed.
    pub(crate) fn set(self, mut value: T) {
        let value_ptr = ptr::from_mut(&mut value).cast::<usize>();
        // SAFETY: `value` starts with its usize `struct_size` field (trait contract).
        unsafe { value_ptr.write(self.size) };
        // SAFETY: `size` bytes fit both (checked in `new`), `slot` is writable for them (the
        // contract of `new`), and a local cannot overlap the host's struct.
        unsafe {
            ptr::copy_nonoverlapping(
                ptr::from_ref(&value).cast::<u8>(),
                self.slot.cast::<u8>(),
                self.size,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podvisor_error_code::*;
    use std::mem::offset_of;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Flags {
        struct_size: usize,
        count: u32,
        enabled: bool,
        tail: u64,
    }

    // SAFETY: repr(C), starts with `struct_size: usize`.
    unsafe impl Options for Flags {
        const NAME: &'static str = "flags";
        const KNOWN_SIZES: &'static [usize] = &[offset_of!(Flags, tail), size_of::<Flags>()];

        fn defaults() -> Self {
            Self {
                struct_size: size_of::<Self>(),
                count: 7,
                enabled: false,
                tail: 9,
            }
        }
    }

    // SAFETY: integers and one bool, listed.
    unsafe impl Input for Flags {
        const BOOL_FIELDS: &'static [usize] = &[offset_of!(Flags, enabled)];
    }

    /// A struct's bytes as C would leave them: `fill` everywhere but `struct_size`.
    fn filled(fill: u8, struct_size: usize) -> Vec<u64> {
        let mut words = vec![0u64; size_of::<Flags>().div_ceil(8)];
        // SAFETY: the buffer holds at least `size_of::<Flags>()` bytes.
        unsafe {
            let bytes = words.as_mut_ptr().cast::<u8>();
            ptr::write_bytes(bytes, fill, size_of::<Flags>());
            bytes.cast::<usize>().write(struct_size);
        }
        words
    }

    #[test]
    fn test_read_takes_any_non_zero_bool_byte_as_true() {
        let words = filled(0xab, size_of::<Flags>());
        // SAFETY: the buffer holds a whole `Flags`, aligned.
        let got = unsafe { read(words.as_ptr().cast::<Flags>(), "flags") };
        let got = got.expect("a known size");
        assert!(got.enabled);
        assert_eq!(got.count, 0xabab_abab);
    }

    #[test]
    fn test_read_takes_defaults_past_an_older_size() {
        let older = offset_of!(Flags, tail);
        let words = filled(0, older);
        // SAFETY: the buffer holds a whole `Flags`, aligned.
        let got = unsafe { read(words.as_ptr().cast::<Flags>(), "flags") }.expect("known size");
        assert_eq!((got.struct_size, got.count, got.enabled), (older, 0, false));
        assert_eq!(got.tail, 9);
    }

    #[test]
    fn test_result_out_reads_only_the_size_and_writes_only_its_bytes() {
        let older = offset_of!(Flags, tail);
        let mut words = filled(0xab, older);
        let p = words.as_mut_ptr().cast::<Flags>();
        // SAFETY: the buffer holds a whole `Flags`, aligned, and outlives the `ResultOut`.
        let out = unsafe { ResultOut::new(p, "flags") }.expect("a known size");
        out.set(Flags {
            enabled: true,
            tail: 1,
            ..Flags::defaults()
        });
        // SAFETY: every field was just written with a valid value, except `tail`, read as u64.
        let (size, count, enabled, tail) = unsafe {
            (
                p.cast::<usize>().read(),
                (*p).count,
                (*p).enabled,
                p.cast::<u8>().add(older).cast::<u64>().read(),
            )
        };
        assert_eq!((size, count, enabled), (older, 7, true));
        assert_eq!(
            tail, 0xabab_abab_abab_abab,
            "bytes past struct_size are left alone"
        );
    }

    #[test]
    fn test_result_out_fails_when_null_misaligned_or_of_unknown_size() {
        let null = ptr::null_mut::<Flags>();
        // SAFETY: NULL is refused before anything is read.
        let got = unsafe { ResultOut::new(null, "flags") }.map(|_| ());
        assert_eq!(got.map_err(|e| e.code), Err(PODVISOR_ENULL));
        // SAFETY: as above.
        let optional = unsafe { ResultOut::optional(null, "flags") };
        assert!(matches!(optional, Ok(None)));

        let mut words = filled(0, size_of::<Flags>());
        let misaligned = words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<Flags>();
        // SAFETY: a misaligned pointer is refused before anything is read.
        let got = unsafe { ResultOut::new(misaligned, "flags") }.map(|_| ());
        assert_eq!(got.map_err(|e| e.code), Err(PODVISOR_EINVAL));

        let mut words = filled(0, 3);
        // SAFETY: the buffer holds a whole `Flags`, aligned.
        let got = unsafe { ResultOut::new(words.as_mut_ptr().cast::<Flags>(), "flags") };
        assert_eq!(
            got.map(|_| ()).map_err(|e| (e.code, e.argument)),
            Err((PODVISOR_EINVAL, Some("flags")))
        );
    }
}
