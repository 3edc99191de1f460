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

use podvisor_store::StoreError;

use crate::error::{FfiError, chain, podvisor_error_code};
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
