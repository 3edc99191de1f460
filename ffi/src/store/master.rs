//! An embedded store master: started in this process from options, stopped by the host.

use std::ffi::c_char;
use std::sync::Mutex;
use std::time::Duration;

use podvisor_store::api::Member;
use podvisor_store::{Master, MasterConfig};

use super::store_error;
use crate::boundary::{Out, arg_non_empty_str, arg_opt_str, arg_str_array, call, malloc_string};
use crate::error::{FfiError, FfiResult, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Input, Options};
use podvisor_error_code::*;

/// A store master running in this process. Created by `podvisor_master_start`, freed by
/// `podvisor_master_free`.
pub struct podvisor_master {
    _private: [u8; 0],
}

/// What a `podvisor_master` holds; `None` once stopped.
pub(crate) struct MasterObject {
    master: Mutex<Option<Master>>,
    client_addr: String,
}

impl Opaque for podvisor_master {
    type Object = MasterObject;
    const NAME: &'static str = "podvisor_master";
}

/// How to start a master. Initialise with `podvisor_master_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_master_options {
    /// `sizeof(podvisor_master_options)`, set by `podvisor_master_options_init`.
    pub struct_size: usize,
    /// This master's id, one of the members' ids, never 0. Required.
    pub id: u64,
    /// The id every member of the cluster shares; default 1.
    pub cluster_id: u64,
    /// The directory of the raft log and snapshots; created if missing. Required.
    pub data_dir: *const c_char,
    /// The initial members, this one included, each `"ID=PEER_ADDR,CLIENT_ADDR"` (as the
    /// `--member` flag of `podvisor-master`). Required; the array and strings are borrowed for
    /// the call only.
    pub members: *const *const c_char,
    /// The number of strings in `members`, at least 1.
    pub members_len: usize,
    /// The address to listen on for peers, or NULL for this member's peer address.
    pub peer_listen: *const c_char,
    /// The address to listen on for clients, or NULL for this member's client address.
    pub client_listen: *const c_char,
    /// Non-zero: start empty and wait to be added by the leader, instead of bootstrapping.
    pub join: u8,
    /// One raft tick in milliseconds, or 0 for the default (50).
    pub tick_ms: u32,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_master_options {
    const NAME: &'static str = "podvisor_master_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_master_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            id: 0,
            cluster_id: 1,
            data_dir: std::ptr::null(),
            members: std::ptr::null(),
            members_len: 0,
            peer_listen: std::ptr::null(),
            client_listen: std::ptr::null(),
            join: 0,
            tick_ms: 0,
        }
    }
}

// SAFETY: every field is a pointer or an integer (`join` is a byte, not a `bool`), for which any
// value C stores is valid.
unsafe impl Input for podvisor_master_options {}

fn parse_member(spec: &str) -> FfiResult<Member> {
    let bad = || {
        FfiError::arg(
            PODVISOR_EINVAL,
            "opts->members",
            format!("opts->members: {spec:?} is not ID=PEER_ADDR,CLIENT_ADDR"),
        )
    };
    let (id, addrs) = spec.split_once('=').ok_or_else(bad)?;
    let (peer, client) = addrs.split_once(',').ok_or_else(bad)?;
    let id = id.trim().parse::<u64>().map_err(|_| bad())?;
    Ok(Member {
        id,
        peer_addr: peer.trim().to_owned(),
        client_addr: client.trim().to_owned(),
        learner: false,
    })
}

/// Fills `opts` with the defaults: no id, cluster 1, no data directory, no members, default
/// listen addresses, bootstrap, 50 ms ticks.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_master_options_init(
    opts: *mut podvisor_master_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

/// Starts a store master in this process: opens its data directory, binds its addresses and
/// starts serving peers and clients. With three members, start one master for each (in this
/// process or others); a leader is elected once two of them run.
///
/// - `opts`: initialised with `podvisor_master_options_init`; borrowed for the call only.
/// - `master`: receives the new handle, owned by the caller, freed with
///   `podvisor_master_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, `opts->data_dir`, `opts->members` or
/// `master` is NULL; `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an
/// unknown `struct_size`, an empty string, a member that does not parse, an id that is not a
/// member, or another invalid configuration; `PODVISOR_EOS` if the data directory or an address
/// cannot be used.
///
/// Blocks: until the master serves (milliseconds; it does not wait for a leader). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_master_start(
    opts: *const podvisor_master_options,
    master: *mut *mut podvisor_master,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `opts` is NULL or readable for its `struct_size` (contract).
        let opts = unsafe { options::read(opts, "opts") }?;
        // SAFETY: `master` is NULL or writable (contract).
        let out = unsafe { Out::new(master, "master") }?;
        // SAFETY: the string fields are NULL or NUL-terminated, `members` holds `members_len`
        // pointers (contract).
        let (data_dir, members, peer_listen, client_listen) = unsafe {
            (
                arg_non_empty_str(opts.data_dir, "opts->data_dir")?,
                arg_str_array(opts.members, opts.members_len, "opts->members")?,
                arg_opt_str(opts.peer_listen, "opts->peer_listen")?,
                arg_opt_str(opts.client_listen, "opts->client_listen")?,
            )
        };
        if opts.id == 0 {
            return Err(FfiError::arg(
                PODVISOR_EINVAL,
                "opts->id",
                "opts->id is 0; ids start at 1",
            ));
        }
        let members = members
            .into_iter()
            .map(parse_member)
            .collect::<FfiResult<Vec<_>>>()?;
        let mut config = MasterConfig::new(opts.id, opts.cluster_id, data_dir, members);
        config.peer_listen = peer_listen.map(str::to_owned);
        config.client_listen = client_listen.map(str::to_owned);
        config.join = opts.join != 0;
        if opts.tick_ms != 0 {
            config.tick = Duration::from_millis(u64::from(opts.tick_ms));
        }
        let started = Master::start(config).map_err(|e| store_error(&e))?;
        let client_addr = started.client_addr().to_owned();
        out.set(handle::register::<podvisor_master>(MasterObject {
            master: Mutex::new(Some(started)),
            client_addr,
        }));
        Ok(())
    })
}

/// Returns the address clients reach this master at (reached, once it is stopped).
///
/// - `master`: borrowed.
/// - `addr`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `master` or `addr` is NULL; `PODVISOR_EHANDLE`
/// for a bad `master`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_master_client_addr(
    master: *const podvisor_master,
    addr: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        let master = handle::get(master, "master")?;
        // SAFETY: `addr` is NULL or writable (contract).
        let addr = unsafe { Out::new(addr, "addr") }?;
        addr.set(malloc_string(&master.client_addr)?);
        Ok(())
    })
}

/// Tells whether this master is the cluster's leader now.
///
/// - `master`: borrowed.
/// - `leader`: receives the answer.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `master` or `leader` is NULL; `PODVISOR_EHANDLE`
/// for a bad `master`; `PODVISOR_ESTATE` if it was stopped.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_master_is_leader(
    master: *const podvisor_master,
    leader: *mut bool,
) -> podvisor_error_code {
    call(|| {
        let master = handle::get(master, "master")?;
        // SAFETY: `leader` is NULL or writable (contract).
        let leader = unsafe { Out::new(leader, "leader") }?;
        let guard = master.master.lock().unwrap_or_else(|p| p.into_inner());
        let running = guard
            .as_ref()
            .ok_or_else(|| FfiError::new(PODVISOR_ESTATE, "the master was stopped"))?;
        leader.set(running.is_leader());
        Ok(())
    })
}

/// Stops the master: it stops serving and closes its data directory. The handle stays valid
/// until freed; `podvisor_master_client_addr` still says where the master served, and the
/// other calls but `podvisor_master_free` give `PODVISOR_ESTATE`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `master` is NULL; `PODVISOR_EHANDLE` for a bad
/// `master`; `PODVISOR_ESTATE` if it was already stopped.
///
/// Blocks: until the master's threads exit. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_master_stop(
    master: *const podvisor_master,
) -> podvisor_error_code {
    call(|| {
        let master = handle::get(master, "master")?;
        let running = master
            .master
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        running
            .ok_or_else(|| FfiError::new(PODVISOR_ESTATE, "the master was already stopped"))?
            .stop();
        Ok(())
    })
}

/// Frees a master handle, stopping the master first if it still runs. NULL does nothing.
///
/// Ownership: takes `master`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: until the master's threads exit. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_master_free(master: *mut podvisor_master) -> podvisor_error_code {
    call(|| {
        if let Some(object) = handle::release(master.cast_const(), "master")? {
            let running = object
                .master
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(running) = running {
                running.stop();
            }
        }
        Ok(())
    })
}
