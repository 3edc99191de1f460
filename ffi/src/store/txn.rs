//! Transactions: a `podvisor_txn` is built with compares and operations, then run by a client.
//! If every compare holds, the success operations apply, else the failure ones, atomically.
//! Reads inside a transaction see the store as the transaction's earlier operations left it;
//! their pairs come back in a `podvisor_txn_result`.

use std::sync::Mutex;

use podvisor_store::api::{
    Compare, CompareOp, CompareTarget, DeleteRequest, KeyRange, PutRequest, RangeRequest, Txn,
    TxnOp, TxnOpResponse, TxnResponse,
};

use super::client::{arg_key, arg_range, kvs_handle, podvisor_client, podvisor_kvs};
use super::store_error;
use crate::boundary::{OptOut, Out, arg_bytes, call};
use crate::error::{FfiError, FfiResult, podvisor_error_code};
use crate::handle::{self, Opaque};
use podvisor_error_code::*;

/// A transaction being built. Created by `podvisor_txn_new`, freed by `podvisor_txn_free`.
pub struct podvisor_txn {
    _private: [u8; 0],
}

impl Opaque for podvisor_txn {
    type Object = Mutex<Txn>;
    const NAME: &'static str = "podvisor_txn";
}

/// What a transaction did: the branch taken, the revision after it, and one result per
/// operation of that branch. Created by `podvisor_client_txn_run`, freed by
/// `podvisor_txn_result_free`.
pub struct podvisor_txn_result {
    _private: [u8; 0],
}

impl Opaque for podvisor_txn_result {
    type Object = TxnResponse;
    const NAME: &'static str = "podvisor_txn_result";
}

/// What a transaction compare looks at.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_compare_target {
    /// The value (a missing key never compares true); compared with `value`.
    PODVISOR_COMPARE_VALUE = 0,
    /// The version (0 for a missing key); compared with `number`.
    PODVISOR_COMPARE_VERSION = 1,
    /// The create revision (0 for a missing key); compared with `number`.
    PODVISOR_COMPARE_CREATE_REVISION = 2,
    /// The mod revision (0 for a missing key); compared with `number`.
    PODVISOR_COMPARE_MOD_REVISION = 3,
    /// The lease (0 for none); compared with `number`.
    PODVISOR_COMPARE_LEASE = 4,
}

/// How a transaction compare compares the key's attribute with the given one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_compare_op {
    /// Equal.
    PODVISOR_COMPARE_EQUAL = 0,
    /// Not equal.
    PODVISOR_COMPARE_NOT_EQUAL = 1,
    /// The key's attribute is greater.
    PODVISOR_COMPARE_GREATER = 2,
    /// The key's attribute is less.
    PODVISOR_COMPARE_LESS = 3,
}

/// Which branch of a transaction an operation belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_txn_branch {
    /// Applied when a compare fails.
    PODVISOR_TXN_FAILURE = 0,
    /// Applied when every compare holds.
    PODVISOR_TXN_SUCCESS = 1,
}

fn branch(txn: &mut Txn, which: i32) -> FfiResult<&mut Vec<TxnOp>> {
    match which {
        0 => Ok(&mut txn.failure),
        1 => Ok(&mut txn.success),
        other => Err(FfiError::arg(
            PODVISOR_EINVAL,
            "branch",
            format!("branch {other} is not a podvisor_txn_branch"),
        )),
    }
}

fn lock(txn: &Mutex<Txn>) -> std::sync::MutexGuard<'_, Txn> {
    // A Txn is plain data; a panic while it was locked leaves it whole.
    txn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates an empty transaction: no compares (so it succeeds), no operations.
///
/// - `txn`: receives the new handle, owned by the caller, freed with `podvisor_txn_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `txn` is NULL.
///
/// Blocks: no. Threads: any; a transaction may be built on one thread and run on another, but
/// not changed while it runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_new(txn: *mut *mut podvisor_txn) -> podvisor_error_code {
    call(|| {
        // SAFETY: `txn` is NULL or writable (contract).
        unsafe { Out::new(txn, "txn") }?
            .set(handle::register::<podvisor_txn>(Mutex::new(Txn::default())));
        Ok(())
    })
}

/// Adds a condition on one key.
///
/// - `txn`: borrowed.
/// - `key`, `key_len`: the key, not empty; copied.
/// - `target`: a `podvisor_compare_target`.
/// - `op`: a `podvisor_compare_op`.
/// - `value`, `value_len`: compared with the key's value for `PODVISOR_COMPARE_VALUE`; ignored
///   otherwise (pass NULL, 0). Copied.
/// - `number`: compared with the key's attribute for the other targets.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `txn` is NULL, or `key` or `value` is NULL with a
/// non-zero length; `PODVISOR_EINVAL` for an empty key, or a `target` or `op` outside its enum;
/// `PODVISOR_EHANDLE` for a bad `txn`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_compare(
    txn: *const podvisor_txn,
    key: *const u8,
    key_len: usize,
    target: i32,
    op: i32,
    value: *const u8,
    value_len: usize,
    number: u64,
) -> podvisor_error_code {
    call(|| {
        let txn = handle::get(txn, "txn")?;
        // SAFETY: the buffers are NULL or readable for their lengths (contract).
        let (key, value) = unsafe {
            (
                arg_key(key, key_len, "key")?,
                arg_bytes(value, value_len, "value")?,
            )
        };
        let target = match target {
            0 => CompareTarget::Value(value.to_vec()),
            1 => CompareTarget::Version(number),
            2 => CompareTarget::CreateRevision(number),
            3 => CompareTarget::ModRevision(number),
            4 => CompareTarget::Lease(number),
            other => {
                return Err(FfiError::arg(
                    PODVISOR_EINVAL,
                    "target",
                    format!("target {other} is not a podvisor_compare_target"),
                ));
            }
        };
        let op = match op {
            0 => CompareOp::Equal,
            1 => CompareOp::NotEqual,
            2 => CompareOp::Greater,
            3 => CompareOp::Less,
            other => {
                return Err(FfiError::arg(
                    PODVISOR_EINVAL,
                    "op",
                    format!("op {other} is not a podvisor_compare_op"),
                ));
            }
        };
        lock(&txn).compares.push(Compare {
            key: key.to_vec(),
            op,
            target,
        });
        Ok(())
    })
}

/// Adds a put to one branch.
///
/// - `txn`: borrowed.
/// - `branch`: a `podvisor_txn_branch`.
/// - `key`, `value`, `lease`: as for `podvisor_client_put`; copied.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `txn` is NULL, or `key` or `value` is NULL with a
/// non-zero length; `PODVISOR_EINVAL` for an empty key or a `branch` outside its enum;
/// `PODVISOR_EHANDLE` for a bad `txn`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_put(
    txn: *const podvisor_txn,
    branch: i32,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    lease: u64,
) -> podvisor_error_code {
    call(|| {
        let txn = handle::get(txn, "txn")?;
        // SAFETY: the buffers are NULL or readable for their lengths (contract).
        let (key, value) = unsafe {
            (
                arg_key(key, key_len, "key")?,
                arg_bytes(value, value_len, "value")?,
            )
        };
        let put = PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            prev_kv: false,
        };
        self::branch(&mut lock(&txn), branch)?.push(TxnOp::Put(put));
        Ok(())
    })
}

/// Adds a delete of `[key, range_end)` (`key` alone when `range_end` is empty) to one branch.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL`, `PODVISOR_EINVAL` and `PODVISOR_EHANDLE` as for
/// `podvisor_txn_put`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_delete(
    txn: *const podvisor_txn,
    branch: i32,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
) -> podvisor_error_code {
    // SAFETY: the buffers are NULL or readable for their lengths (contract).
    unsafe {
        push_ranged(
            txn,
            branch,
            (key, key_len),
            (range_end, range_end_len),
            |range| {
                TxnOp::Delete(DeleteRequest {
                    range,
                    prev_kv: false,
                })
            },
        )
    }
}

/// Adds the operation `make` builds from the range `[key, range_end)` to one branch.
///
/// # Safety
/// Both buffers are NULL or readable for their lengths.
unsafe fn push_ranged(
    txn: *const podvisor_txn,
    branch: i32,
    (key, key_len): (*const u8, usize),
    (range_end, range_end_len): (*const u8, usize),
    make: impl FnOnce(KeyRange) -> TxnOp,
) -> podvisor_error_code {
    call(|| {
        let txn = handle::get(txn, "txn")?;
        // SAFETY: the buffers are NULL or readable for their lengths (this function's contract).
        let range = unsafe { arg_range(key, key_len, range_end, range_end_len) }?;
        self::branch(&mut lock(&txn), branch)?.push(make(range));
        Ok(())
    })
}

/// Adds a read of `[key, range_end)` to one branch. It sees the writes of the operations
/// before it in the branch; its pairs are read back with `podvisor_txn_result_range`.
///
/// - `txn`: borrowed; `branch` as for `podvisor_txn_put`.
/// - `key`, `range_end`, `limit`: as for `podvisor_client_range`; copied.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL`, `PODVISOR_EINVAL` and `PODVISOR_EHANDLE` as for
/// `podvisor_txn_put`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_range(
    txn: *const podvisor_txn,
    branch: i32,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    limit: usize,
) -> podvisor_error_code {
    // SAFETY: the buffers are NULL or readable for their lengths (contract).
    unsafe {
        push_ranged(
            txn,
            branch,
            (key, key_len),
            (range_end, range_end_len),
            |range| {
                TxnOp::Range(RangeRequest {
                    range,
                    limit,
                    count_only: false,
                    serializable: false,
                })
            },
        )
    }
}

/// Runs a transaction. The transaction is not changed and may be run again.
///
/// - `client`, `txn`: borrowed.
/// - `succeeded`: receives whether every compare held (so the success branch applied); may be
///   NULL.
/// - `revision`: receives the store revision after the transaction; may be NULL.
///
/// Returns `PODVISOR_OK` whichever branch applied; `PODVISOR_ENULL` if `client` or `txn` is
/// NULL; `PODVISOR_EHANDLE` for a bad handle; `PODVISOR_EINVAL` if the store refuses the
/// transaction; `PODVISOR_EUNAVAILABLE` or `PODVISOR_ETIMEOUT` as for `podvisor_client_put`.
///
/// Blocks: yes, until a majority of masters has it or the timeout passes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_txn(
    client: *const podvisor_client,
    txn: *const podvisor_txn,
    succeeded: *mut bool,
    revision: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        let txn = handle::get(txn, "txn")?;
        // SAFETY: each out-pointer is NULL or writable (contract).
        let (succeeded, revision) = unsafe {
            (
                OptOut::new(succeeded, "succeeded")?,
                OptOut::new(revision, "revision")?,
            )
        };
        let request = lock(&txn).clone();
        let resp = client.txn(request).map_err(|e| store_error(&e))?;
        succeeded.set(resp.succeeded);
        revision.set(resp.revision);
        Ok(())
    })
}

/// Frees a transaction. NULL does nothing.
///
/// Ownership: takes `txn`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_free(txn: *mut podvisor_txn) -> podvisor_error_code {
    call(|| handle::release(txn.cast_const(), "txn").map(drop))
}

/// Runs a transaction and keeps everything it did, including the pairs its reads returned.
/// The transaction is not changed and may be run again.
///
/// - `client`, `txn`: borrowed.
/// - `result`: receives the result, owned by the caller, freed with `podvisor_txn_result_free`.
///
/// Returns as `podvisor_client_txn`, and `PODVISOR_ENULL` if `result` is NULL.
///
/// Blocks: yes, until a majority of masters has it or the timeout passes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_txn_run(
    client: *const podvisor_client,
    txn: *const podvisor_txn,
    result: *mut *mut podvisor_txn_result,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        let txn = handle::get(txn, "txn")?;
        // SAFETY: `result` is NULL or writable (contract).
        let out = unsafe { Out::new(result, "result") }?;
        let request = lock(&txn).clone();
        let resp = client.txn(request).map_err(|e| store_error(&e))?;
        out.set(handle::register::<podvisor_txn_result>(resp));
        Ok(())
    })
}

/// Says what a transaction did.
///
/// - `result`: borrowed.
/// - `succeeded`: receives whether every compare held (so the success branch applied); may be
///   NULL.
/// - `revision`: receives the store revision after the transaction; may be NULL.
/// - `len`: receives the number of operation results (those of the branch taken); may be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `result` is NULL; `PODVISOR_EHANDLE` for a bad
/// handle.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_result_info(
    result: *const podvisor_txn_result,
    succeeded: *mut bool,
    revision: *mut u64,
    len: *mut usize,
) -> podvisor_error_code {
    call(|| {
        let resp = handle::get(result, "result")?;
        // SAFETY: each out-pointer is NULL or writable (contract).
        let (succeeded, revision, len) = unsafe {
            (
                OptOut::new(succeeded, "succeeded")?,
                OptOut::new(revision, "revision")?,
                OptOut::new(len, "len")?,
            )
        };
        succeeded.set(resp.succeeded);
        revision.set(resp.revision);
        len.set(resp.responses.len());
        Ok(())
    })
}

/// Reads the pairs of one read of the branch taken.
///
/// - `result`: borrowed.
/// - `index`: the operation's position in its branch, from 0.
/// - `kvs`: receives a handle holding the pairs, owned by the caller, freed with
///   `podvisor_kvs_free`; its revision is the transaction's.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `result` or `kvs` is NULL; `PODVISOR_EHANDLE` for
/// a bad handle; `PODVISOR_EINVAL` if `index` is past the end or names a put or a delete.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_result_range(
    result: *const podvisor_txn_result,
    index: usize,
    kvs: *mut *mut podvisor_kvs,
) -> podvisor_error_code {
    call(|| {
        let resp = handle::get(result, "result")?;
        // SAFETY: `kvs` is NULL or writable (contract).
        let out = unsafe { Out::new(kvs, "kvs") }?;
        let read = match resp.responses.get(index) {
            Some(TxnOpResponse::Range(read)) => read,
            Some(_) => {
                let why = format!("operation {index} of the transaction is not a read");
                return Err(FfiError::arg(PODVISOR_EINVAL, "index", why));
            }
            None => {
                let why = format!(
                    "index {index} is past the transaction's {} results",
                    resp.responses.len()
                );
                return Err(FfiError::arg(PODVISOR_EINVAL, "index", why));
            }
        };
        let pairs = read.kvs.clone();
        out.set(kvs_handle(pairs, resp.revision, read.count, read.more));
        Ok(())
    })
}

/// Frees a transaction result. NULL does nothing.
///
/// Ownership: takes `result`; it must not be used afterwards. Pairs read out of it with
/// `podvisor_txn_result_range` stay valid (they have their own handles).
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_txn_result_free(
    result: *mut podvisor_txn_result,
) -> podvisor_error_code {
    call(|| handle::release(result.cast_const(), "result").map(drop))
}
