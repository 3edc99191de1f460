//! Options structs: their first field is their size, so they can grow without breaking hosts.
//!
//! A host fills `struct_size` with `sizeof` the struct as its header declares it, through the
//! struct's init function. libpodvisor accepts every size a release of the struct has had, reads
//! only the fields that size covers, and takes the defaults for the rest. A size it does not know
//! (garbage, or a header newer than the library) is refused with `PODVISOR_EINVAL`.

use std::mem::size_of;
use std::ptr;

use crate::error::{FfiError, FfiResult, podvisor_error_code};

/// An options struct of the C ABI.
///
/// # Safety
/// The type must be `#[repr(C)]`, plain data (every bit pattern of its fields that C may store is
/// a valid value), and start with a `usize` `struct_size` field.
pub(crate) unsafe trait Options: Copy + 'static {
    /// The C name, for messages.
    const NAME: &'static str;
    /// Every size a release of the struct has had, oldest first; the last is the current one.
    const KNOWN_SIZES: &'static [usize];
    /// The defaults the init function writes, with `struct_size` set to the current size.
    fn defaults() -> Self;
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

/// Reads an options argument: the fields its `struct_size` covers, defaults for the rest.
///
/// # Safety
/// `p` must be NULL or point to at least `struct_size` readable bytes that start with a `usize`.
pub(crate) unsafe fn read<T: Options>(p: *const T, name: &'static str) -> FfiResult<T> {
    // SAFETY: forwarded contract; `arg_ref` checks NULL and alignment.
    let head = unsafe { crate::boundary::arg_ref(p.cast::<usize>(), name) }?;
    let size = *head;
    check_size::<T>(size, name)?;
    let mut value = T::defaults();
    // SAFETY: `size` bytes are readable at `p` (caller's contract) and fit in `value` (checked);
    // `T: Options` promises every byte pattern C stores in its fields is valid.
    unsafe {
        ptr::copy_nonoverlapping(p.cast::<u8>(), ptr::from_mut(&mut value).cast::<u8>(), size);
    }
    Ok(value)
}

/// Writes the defaults into an options struct of `struct_size` bytes, for the init functions.
///
/// # Safety
/// `p` must be NULL or valid for writing `struct_size` bytes.
pub(crate) unsafe fn init<T: Options>(
    p: *mut T,
    struct_size: usize,
    name: &'static str,
) -> FfiResult<()> {
    // SAFETY: forwarded contract; only checks NULL and alignment.
    unsafe { crate::boundary::arg_ref(p.cast_const(), name) }?;
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

/// Writes a result struct back, only the `struct_size` bytes the host's struct has.
///
/// # Safety
/// `p` must have passed [`read`] and be writable for its `struct_size` bytes.
pub(crate) unsafe fn write<T: Options>(p: *mut T, mut value: T) {
    // SAFETY: `p` passed `read`, so it is non-NULL, aligned and starts with a known size.
    let size = unsafe { p.cast::<usize>().read() };
    let value_ptr = ptr::from_mut(&mut value).cast::<usize>();
    // SAFETY: `value` starts with its usize `struct_size` field (trait contract); the host's
    // size is kept so it reads back what it passed.
    unsafe { value_ptr.write(size) };
    // SAFETY: `size` bytes fit both (checked by `read`), and `p` is writable (contract).
    unsafe { ptr::copy_nonoverlapping(ptr::from_ref(&value).cast::<u8>(), p.cast::<u8>(), size) };
}
