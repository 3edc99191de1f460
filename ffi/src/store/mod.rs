//! The replicated store: an embedded master, and a client with key-value calls, transactions,
//! watches and leases. Wraps `podvisor_store`.
//!
//! - [`master`]: start and stop a master in this process;
//! - [`client`]: connect, put, get, range, delete, leases, and the result handles;
//! - [`txn`]: transactions built step by step;
//! - [`watch`]: watches delivered to a callback or polled.

pub mod client;
pub mod master;
pub mod txn;
pub mod watch;

use std::ffi::c_char;

use podvisor_store::StoreError;

use crate::boundary::{arg_non_empty_str, arg_ref};
use crate::error::{FfiError, FfiResult, chain, podvisor_error_code};
use podvisor_error_code::*;

/// Turns a store error into the code the header documents for it.
pub(crate) fn store_error(err: &StoreError) -> FfiError {
    let code = match err {
        StoreError::Io { .. } | StoreError::LogEngine { .. } => PODVISOR_EOS,
        StoreError::NotLeader { .. }
        | StoreError::Unavailable(_)
        | StoreError::WrongCluster { .. } => PODVISOR_EUNAVAILABLE,
        StoreError::Compacted { .. } => PODVISOR_ECOMPACTED,
        StoreError::FutureRevision { .. }
        | StoreError::InvalidRequest(_)
        | StoreError::Config(_) => PODVISOR_EINVAL,
        StoreError::LeaseNotFound(_) => PODVISOR_ENOTFOUND,
        StoreError::LeaseExists(_) => PODVISOR_EEXISTS,
        StoreError::Timeout(_) | StoreError::OutcomeUnknown(_) => PODVISOR_ETIMEOUT,
        StoreError::Stopped => PODVISOR_ESTATE,
        _ => PODVISOR_ERROR,
    };
    FfiError::new(code, chain(err))
}

/// Reads an array of `len` NUL-terminated, non-empty UTF-8 strings.
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
