//! A store client: put, get, range, delete and leases, and `podvisor_kvs`, the handle that holds
//! the pairs a read returned.

use std::ffi::c_char;
use std::time::Duration;

use podvisor_store::api::{KeyRange, KeyValue, PutRequest, RangeRequest};
use podvisor_store::{Client, ClientConfig};

use super::store_error;
use crate::boundary::{OptOut, Out, arg_bytes, arg_str_array, call};
use crate::error::{FfiError, FfiResult, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Input, Options, ResultOut};
use podvisor_error_code::*;

/// A client of the store's masters. Created by `podvisor_client_connect`, freed by
/// `podvisor_client_free`.
pub struct podvisor_client {
    _private: [u8; 0],
}

impl Opaque for podvisor_client {
    type Object = Client;
    const NAME: &'static str = "podvisor_client";
}

/// The key-value pairs a read returned. Freed by `podvisor_kvs_free`.
pub struct podvisor_kvs {
    _private: [u8; 0],
}

/// What a `podvisor_kvs` holds.
pub(crate) struct KvsObject {
    kvs: Vec<KeyValue>,
    revision: u64,
    count: usize,
    more: bool,
}

impl Opaque for podvisor_kvs {
    type Object = KvsObject;
    const NAME: &'static str = "podvisor_kvs";
}

/// How to reach the masters. Initialise with `podvisor_client_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_client_options {
    /// `sizeof(podvisor_client_options)`, set by `podvisor_client_options_init`.
    pub struct_size: usize,
    /// The masters' client addresses (`"127.0.0.1:2379"`). Required; the array and strings are
    /// borrowed for the call only.
    pub endpoints: *const *const c_char,
    /// The number of strings in `endpoints`, at least 1.
    pub endpoints_len: usize,
    /// The cluster id the masters must have, or 0 for any; default 0.
    pub cluster_id: u64,
    /// How long one call may take, retries included, in milliseconds; 0 for the default (10 s).
    pub timeout_ms: u32,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_client_options {
    const NAME: &'static str = "podvisor_client_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_client_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            endpoints: std::ptr::null(),
            endpoints_len: 0,
            cluster_id: 0,
            timeout_ms: 0,
        }
    }
}

// SAFETY: pointers and integers only, for which any value C stores is valid.
unsafe impl Input for podvisor_client_options {}

/// One key-value pair, filled by `podvisor_kvs_at`. Initialise with `podvisor_kv_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_kv {
    /// `sizeof(podvisor_kv)`, set by `podvisor_kv_init`.
    pub struct_size: usize,
    /// The key; borrowed from the `podvisor_kvs` it came from, valid until that is freed.
    pub key: *const u8,
    /// The key's length in bytes.
    pub key_len: usize,
    /// The value; borrowed like `key`.
    pub value: *const u8,
    /// The value's length in bytes.
    pub value_len: usize,
    /// The revision of the write that created the key.
    pub create_revision: u64,
    /// The revision of the last write to the key.
    pub mod_revision: u64,
    /// The number of writes since the key was created.
    pub version: u64,
    /// The lease the key is attached to, 0 for none.
    pub lease: u64,
}

// SAFETY: repr(C), starts with `struct_size: usize`. A result struct: not `Input`, so nothing
// but `struct_size` is ever read of the host's.
unsafe impl Options for podvisor_kv {
    const NAME: &'static str = "podvisor_kv";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_kv>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            key: std::ptr::null(),
            key_len: 0,
            value: std::ptr::null(),
            value_len: 0,
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            lease: 0,
        }
    }
}

/// Reads a key argument: bytes, not empty.
///
/// # Safety
/// `p` must be NULL or readable for `len` bytes.
pub(crate) unsafe fn arg_key<'a>(
    p: *const u8,
    len: usize,
    name: &'static str,
) -> FfiResult<&'a [u8]> {
    // SAFETY: forwarded contract.
    let key = unsafe { arg_bytes(p, len, name) }?;
    if key.is_empty() {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} is empty"),
        ));
    }
    Ok(key)
}

/// Reads a key range: `key` alone when `range_end` is empty, else `[key, range_end)`.
///
/// # Safety
/// As for [`arg_key`], for both buffers.
pub(crate) unsafe fn arg_range(
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
) -> FfiResult<KeyRange> {
    // SAFETY: forwarded contract.
    let (key, range_end) = unsafe {
        (
            arg_key(key, key_len, "key")?,
            arg_bytes(range_end, range_end_len, "range_end")?,
        )
    };
    Ok(KeyRange {
        key: key.to_vec(),
        range_end: range_end.to_vec(),
    })
}

pub(crate) fn kvs_handle(
    kvs: Vec<KeyValue>,
    revision: u64,
    count: usize,
    more: bool,
) -> *mut podvisor_kvs {
    handle::register::<podvisor_kvs>(KvsObject {
        kvs,
        revision,
        count,
        more,
    })
}

/// Fills `opts` with the defaults: no endpoints, any cluster, a 10 s timeout.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_options_init(
    opts: *mut podvisor_client_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

/// Fills `kv` with empty values and sets its `struct_size`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `kv` is NULL; `PODVISOR_EINVAL` if `struct_size`
/// is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_kv_init(
    kv: *mut podvisor_kv,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `kv` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(kv, struct_size, "kv") })
}

/// Creates a client of the masters in `opts`. Connections are made lazily, on the first call,
/// to whichever master answers; calls are sent to the leader.
///
/// - `opts`: initialised with `podvisor_client_options_init`; borrowed for the call only.
/// - `client`: receives the new handle, owned by the caller, freed with `podvisor_client_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, `opts->endpoints`, one endpoint or
/// `client` is NULL; `PODVISOR_EUTF8` for an endpoint that is not UTF-8; `PODVISOR_EINVAL` for
/// an unknown `struct_size`, no endpoints, or one that is not `HOST:PORT` (a name or an IPv4
/// address, or an IPv6 address in brackets, and a port from 1 to 65535).
///
/// Blocks: no (nothing is connected yet). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_connect(
    opts: *const podvisor_client_options,
    client: *mut *mut podvisor_client,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `opts` is NULL or readable for its `struct_size` (contract).
        let opts = unsafe { options::read(opts, "opts") }?;
        // SAFETY: `client` is NULL or writable (contract).
        let out = unsafe { Out::new(client, "client") }?;
        // SAFETY: `endpoints` holds `endpoints_len` string pointers (contract).
        let endpoints =
            unsafe { arg_str_array(opts.endpoints, opts.endpoints_len, "opts->endpoints") }?;
        let mut config = ClientConfig::new(&endpoints);
        config.cluster_id = opts.cluster_id;
        if opts.timeout_ms != 0 {
            config.timeout = Duration::from_millis(u64::from(opts.timeout_ms));
        }
        let connected = Client::with_config(config).map_err(|e| FfiError {
            argument: Some("opts->endpoints"),
            ..store_error(&e)
        })?;
        out.set(handle::register::<podvisor_client>(connected));
        Ok(())
    })
}

/// Frees a client. Watches created from it keep running until freed themselves. NULL does
/// nothing.
///
/// Ownership: takes `client`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_free(client: *mut podvisor_client) -> podvisor_error_code {
    call(|| handle::release(client.cast_const(), "client").map(drop))
}

/// Writes `value` at `key`, optionally attached to a lease.
///
/// - `client`: borrowed.
/// - `key`, `key_len`: the key, any bytes, not empty; borrowed for the call.
/// - `value`, `value_len`: the value, any bytes (NULL with length 0 for empty); borrowed.
/// - `lease`: the lease to attach the key to, 0 for none.
/// - `revision`: receives the store revision of the write; may be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` is NULL, or `key` or `value` is NULL with
/// a non-zero length; `PODVISOR_EINVAL` for an empty key; `PODVISOR_EHANDLE` for a bad
/// `client`; `PODVISOR_ENOTFOUND` for an unknown lease; `PODVISOR_EUNAVAILABLE` if no master
/// answers; `PODVISOR_ETIMEOUT` if the outcome is unknown after the timeout.
///
/// Blocks: yes, until a majority of masters has the write or the timeout passes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_put(
    client: *const podvisor_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    lease: u64,
    revision: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the buffers are NULL or readable for their lengths, `revision` NULL or
        // writable (contract).
        let (key, value, revision) = unsafe {
            (
                arg_key(key, key_len, "key")?,
                arg_bytes(value, value_len, "value")?,
                OptOut::new(revision, "revision")?,
            )
        };
        let req = PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            prev_kv: false,
        };
        let resp = client.put_with(req).map_err(|e| store_error(&e))?;
        revision.set(resp.revision);
        Ok(())
    })
}

/// Reads one key, linearizably.
///
/// - `client`: borrowed.
/// - `key`, `key_len`: the key, not empty; borrowed for the call.
/// - `kvs`: receives a handle holding the one pair, owned by the caller, freed with
///   `podvisor_kvs_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the key does not exist (no handle is
/// returned); `PODVISOR_ENULL` if `client` or `kvs` is NULL, or `key` is NULL with a non-zero
/// length; `PODVISOR_EINVAL` for an empty key; `PODVISOR_EHANDLE` for a bad `client`;
/// `PODVISOR_EUNAVAILABLE` if no leader could confirm the read in time.
///
/// Blocks: yes, one round trip to the leader. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_get(
    client: *const podvisor_client,
    key: *const u8,
    key_len: usize,
    kvs: *mut *mut podvisor_kvs,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: `key` is NULL or readable for `key_len` bytes, `kvs` NULL or writable.
        let (key, out) = unsafe { (arg_key(key, key_len, "key")?, Out::new(kvs, "kvs")?) };
        let found = client.get(key).map_err(|e| store_error(&e))?;
        let found = found.ok_or_else(|| {
            FfiError::new(
                PODVISOR_ENOTFOUND,
                format!("key {:?} does not exist", String::from_utf8_lossy(key)),
            )
        })?;
        let revision = found.mod_revision;
        out.set(kvs_handle(vec![found], revision, 1, false));
        Ok(())
    })
}

/// Reads the keys in `[key, range_end)`, in key order, linearizably.
///
/// - `client`: borrowed.
/// - `key`, `key_len`: the first key, not empty; borrowed for the call.
/// - `range_end`, `range_end_len`: the end, exclusive; empty (NULL, 0) for `key` alone, the
///   single byte `"\0"` for every key from `key` on. Borrowed for the call.
/// - `limit`: at most this many pairs, 0 for no limit.
/// - `kvs`: receives a handle holding the pairs (perhaps none), owned by the caller, freed with
///   `podvisor_kvs_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL`, `PODVISOR_EINVAL`, `PODVISOR_EHANDLE` and
/// `PODVISOR_EUNAVAILABLE` as for `podvisor_client_get`.
///
/// Blocks: yes, one round trip to the leader. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_range(
    client: *const podvisor_client,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    limit: usize,
    kvs: *mut *mut podvisor_kvs,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the buffers are NULL or readable for their lengths, `kvs` NULL or writable.
        let (range, out) = unsafe {
            (
                arg_range(key, key_len, range_end, range_end_len)?,
                Out::new(kvs, "kvs")?,
            )
        };
        let req = RangeRequest {
            range,
            limit,
            count_only: false,
            serializable: false,
        };
        let resp = client.range(req).map_err(|e| store_error(&e))?;
        out.set(kvs_handle(resp.kvs, resp.revision, resp.count, resp.more));
        Ok(())
    })
}

/// Deletes the keys in `[key, range_end)` (`key` alone when `range_end` is empty).
///
/// - `client`: borrowed; `key` and `range_end` as for `podvisor_client_range`.
/// - `deleted`: receives the number of keys deleted; may be NULL.
/// - `revision`: receives the store revision after the delete; may be NULL.
///
/// Returns `PODVISOR_OK` (also when nothing matched); `PODVISOR_ENULL`, `PODVISOR_EINVAL`,
/// `PODVISOR_EHANDLE`, `PODVISOR_EUNAVAILABLE` and `PODVISOR_ETIMEOUT` as for
/// `podvisor_client_put`.
///
/// Blocks: yes, until a majority of masters has the delete or the timeout passes.
/// Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_delete(
    client: *const podvisor_client,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    deleted: *mut u64,
    revision: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the buffers are NULL or readable for their lengths, the out-pointers NULL or
        // writable (contract).
        let (range, deleted, revision) = unsafe {
            (
                arg_range(key, key_len, range_end, range_end_len)?,
                OptOut::new(deleted, "deleted")?,
                OptOut::new(revision, "revision")?,
            )
        };
        let resp = if range.range_end.is_empty() {
            client.delete(range.key)
        } else {
            client.delete_range(range)
        }
        .map_err(|e| store_error(&e))?;
        deleted.set(resp.deleted as u64);
        revision.set(resp.revision);
        Ok(())
    })
}

/// Tells how many pairs a `podvisor_kvs` holds and what the read saw.
///
/// - `kvs`: borrowed.
/// - `len`: receives the number of pairs held; may be NULL.
/// - `revision`: receives the store revision the read saw; may be NULL.
/// - `more`: receives whether the limit cut the answer short; may be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `kvs` is NULL; `PODVISOR_EHANDLE` for a bad
/// `kvs`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_kvs_info(
    kvs: *const podvisor_kvs,
    len: *mut usize,
    revision: *mut u64,
    more: *mut bool,
) -> podvisor_error_code {
    call(|| {
        let kvs = handle::get(kvs, "kvs")?;
        // SAFETY: each out-pointer is NULL or writable (contract).
        let (len, revision, more) = unsafe {
            (
                OptOut::new(len, "len")?,
                OptOut::new(revision, "revision")?,
                OptOut::new(more, "more")?,
            )
        };
        len.set(kvs.kvs.len());
        revision.set(kvs.revision);
        more.set(kvs.more || kvs.count > kvs.kvs.len());
        Ok(())
    })
}

/// Fills `kv` with the pair at `index`; its key and value point into `kvs` and stay valid until
/// `kvs` is freed.
///
/// - `kvs`: borrowed.
/// - `index`: below the length `podvisor_kvs_info` gives.
/// - `kv`: initialised with `podvisor_kv_init`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `kvs` or `kv` is NULL; `PODVISOR_EINVAL` for an
/// index out of range or an unknown `kv->struct_size`; `PODVISOR_EHANDLE` for a bad `kvs`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_kvs_at(
    kvs: *const podvisor_kvs,
    index: usize,
    kv: *mut podvisor_kv,
) -> podvisor_error_code {
    call(|| {
        let kvs = handle::get(kvs, "kvs")?;
        // SAFETY: `kv` is NULL or readable and writable for its `struct_size` (contract).
        let kv = unsafe { ResultOut::new(kv, "kv") }?;
        let pair = kvs.kvs.get(index).ok_or_else(|| {
            FfiError::arg(
                PODVISOR_EINVAL,
                "index",
                format!("index {index} is past the {} pairs", kvs.kvs.len()),
            )
        })?;
        let filled = podvisor_kv {
            key: pair.key.as_ptr(),
            key_len: pair.key.len(),
            value: pair.value.as_ptr(),
            value_len: pair.value.len(),
            create_revision: pair.create_revision,
            mod_revision: pair.mod_revision,
            version: pair.version,
            lease: pair.lease,
            ..podvisor_kv::defaults()
        };
        kv.set(filled);
        Ok(())
    })
}

/// Frees a `podvisor_kvs` and the keys and values it lent. NULL does nothing.
///
/// Ownership: takes `kvs`; it and every pointer `podvisor_kvs_at` gave from it must not be used
/// afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_kvs_free(kvs: *mut podvisor_kvs) -> podvisor_error_code {
    call(|| handle::release(kvs.cast_const(), "kvs").map(drop))
}

/// Grants a lease; keys attached to it are deleted when it expires or is revoked.
///
/// - `client`: borrowed.
/// - `ttl_secs`: its time to live in seconds, at least 1.
/// - `id`: receives the lease id.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `id` is NULL; `PODVISOR_EINVAL` for a
/// TTL of 0; `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_EUNAVAILABLE` or
/// `PODVISOR_ETIMEOUT` as for `podvisor_client_put`.
///
/// Blocks: yes, until a majority of masters has the grant. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_lease_grant(
    client: *const podvisor_client,
    ttl_secs: u64,
    id: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: `id` is NULL or writable (contract).
        let id = unsafe { Out::new(id, "id") }?;
        if ttl_secs == 0 {
            return Err(FfiError::arg(PODVISOR_EINVAL, "ttl_secs", "ttl_secs is 0"));
        }
        id.set(
            client
                .lease_grant(ttl_secs)
                .map_err(|e| store_error(&e))?
                .id,
        );
        Ok(())
    })
}

/// Refreshes a lease to its full time to live. Call it well within the TTL to keep the lease.
///
/// - `client`: borrowed.
/// - `id`: the lease.
/// - `ttl_secs`: receives the TTL it was refreshed to; may be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the lease expired or was revoked;
/// `PODVISOR_ENULL` if `client` is NULL; `PODVISOR_EHANDLE` for a bad `client`;
/// `PODVISOR_EUNAVAILABLE` if no master answers.
///
/// Blocks: yes, one round trip to the leader. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_lease_keep_alive(
    client: *const podvisor_client,
    id: u64,
    ttl_secs: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: `ttl_secs` is NULL or writable (contract).
        let ttl_secs = unsafe { OptOut::new(ttl_secs, "ttl_secs") }?;
        ttl_secs.set(client.lease_keep_alive(id).map_err(|e| store_error(&e))?);
        Ok(())
    })
}

/// Revokes a lease, deleting every key attached to it.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the lease does not exist; `PODVISOR_ENULL` if
/// `client` is NULL; `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_EUNAVAILABLE` or
/// `PODVISOR_ETIMEOUT` as for `podvisor_client_put`.
///
/// Blocks: yes, until a majority of masters has the revocation. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_lease_revoke(
    client: *const podvisor_client,
    id: u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        client.lease_revoke(id).map_err(|e| store_error(&e))
    })
}

/// Tells how long a lease has left, as the leader sees it.
///
/// - `remaining_ms`: receives the time left in milliseconds.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if the lease does not exist; `PODVISOR_ENULL` if
/// `client` or `remaining_ms` is NULL; `PODVISOR_EHANDLE` for a bad `client`;
/// `PODVISOR_EUNAVAILABLE` if no master answers.
///
/// Blocks: yes, one round trip to the leader. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_lease_time_to_live(
    client: *const podvisor_client,
    id: u64,
    remaining_ms: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: `remaining_ms` is NULL or writable (contract).
        let out = unsafe { Out::new(remaining_ms, "remaining_ms") }?;
        out.set(
            client
                .lease_time_to_live(id)
                .map_err(|e| store_error(&e))?
                .remaining_ms,
        );
        Ok(())
    })
}
