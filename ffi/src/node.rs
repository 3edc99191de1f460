//! The node agent, started and stopped in the host process. Wraps
//! `podvisor_cluster::node::NodeAgent` over a store client.

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Mutex;

use podvisor_cluster::node::{NodeAgent, NodeAgentConfig, NodeAgentError};

use crate::boundary::{Out, arg_non_empty_str, arg_opt_str, call, malloc_string};
use crate::error::{FfiError, chain, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Input, Options};
use crate::store::client::podvisor_client;
use podvisor_error_code::*;

/// A node agent running in this process. Created by `podvisor_node_agent_start`, freed by
/// `podvisor_node_agent_free`.
pub struct podvisor_node_agent {
    _private: [u8; 0],
}

/// What a `podvisor_node_agent` holds; `None` once stopped.
pub(crate) struct NodeObject {
    agent: Mutex<Option<NodeAgent>>,
    address: String,
}

impl Opaque for podvisor_node_agent {
    type Object = NodeObject;
    const NAME: &'static str = "podvisor_node_agent";
}

/// How to run a node agent. Initialise with `podvisor_node_agent_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_node_agent_options {
    /// `sizeof(podvisor_node_agent_options)`, set by `podvisor_node_agent_options_init`.
    pub struct_size: usize,
    /// The node's name. Required; borrowed for the call.
    pub name: *const c_char,
    /// Where sandboxes, VM consoles and the agent's records live. Required; borrowed.
    pub state_dir: *const c_char,
    /// The static podvisor agent binary run as PID 1 of each sandbox. Required; borrowed.
    pub agent_binary: *const c_char,
    /// The cache holding `images/` and `kernel/`. Required; borrowed.
    pub cache_dir: *const c_char,
    /// The pod bridge, or NULL to run pods with loopback only. Borrowed.
    pub bridge: *const c_char,
    /// Where logs and exec are served (`"127.0.0.1:0"` by default, NULL). Borrowed.
    pub listen: *const c_char,
    /// The most pods the node takes, or 0 for the default (32).
    pub max_pods: u32,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_node_agent_options {
    const NAME: &'static str = "podvisor_node_agent_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_node_agent_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            name: std::ptr::null(),
            state_dir: std::ptr::null(),
            agent_binary: std::ptr::null(),
            cache_dir: std::ptr::null(),
            bridge: std::ptr::null(),
            listen: std::ptr::null(),
            max_pods: 0,
        }
    }
}

// SAFETY: pointers and integers only, for which any value C stores is valid.
unsafe impl Input for podvisor_node_agent_options {}

fn node_error(err: &NodeAgentError) -> FfiError {
    let code = match err {
        NodeAgentError::Register { source, .. } => {
            return FfiError {
                message: chain(err),
                ..crate::objects::registry_error(source)
            };
        }
        NodeAgentError::Host { .. } => PODVISOR_EOS,
        NodeAgentError::NameInUse { .. } => PODVISOR_EEXISTS,
        NodeAgentError::Store(store) => {
            return FfiError {
                message: chain(err),
                ..crate::store::store_error(store)
            };
        }
    };
    FfiError::new(code, chain(err))
}

/// Fills `opts` with the defaults: no name or directories, no bridge, `127.0.0.1:0`, 32 pods.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_node_agent_options_init(
    opts: *mut podvisor_node_agent_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

/// Registers this host as a node and starts the node agent's loops in this process: it keeps
/// the node's lease, runs the pods and VMs bound to the node, and serves their logs and exec.
///
/// - `client`: borrowed; the agent keeps its own reference.
/// - `opts`: initialised with `podvisor_node_agent_options_init`; borrowed for the call.
/// - `agent`: receives the new handle, owned by the caller, freed with
///   `podvisor_node_agent_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `opts`, a required string or `agent`
/// is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string, a `listen` that is not an
/// address, or an unknown `struct_size`; `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_EOS`
/// if the state directory or the listen address cannot be used; `PODVISOR_EEXISTS` if another
/// live node agent runs a node of that name; store errors if the node cannot be registered.
///
/// Blocks: until the node is registered (a few store round trips); when an agent of the same
/// name stopped without a clean stop, until its lease lapses (up to the lease TTL).
/// Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_node_agent_start(
    client: *const podvisor_client,
    opts: *const podvisor_node_agent_options,
    agent: *mut *mut podvisor_node_agent,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: `opts` is NULL or readable for its `struct_size`, `agent` NULL or writable.
        let (opts, out) = unsafe { (options::read(opts, "opts")?, Out::new(agent, "agent")?) };
        // SAFETY: the string fields are NULL or NUL-terminated (contract).
        let (name, state_dir, agent_binary, cache_dir, bridge, listen) = unsafe {
            (
                arg_non_empty_str(opts.name, "opts->name")?,
                arg_non_empty_str(opts.state_dir, "opts->state_dir")?,
                arg_non_empty_str(opts.agent_binary, "opts->agent_binary")?,
                arg_non_empty_str(opts.cache_dir, "opts->cache_dir")?,
                arg_opt_str(opts.bridge, "opts->bridge")?,
                arg_opt_str(opts.listen, "opts->listen")?,
            )
        };
        let mut config = NodeAgentConfig::new(
            name,
            PathBuf::from(state_dir),
            PathBuf::from(agent_binary),
            PathBuf::from(cache_dir),
        );
        config.bridge = bridge.map(str::to_owned);
        if let Some(listen) = listen {
            config.listen = listen.parse().map_err(|_| {
                FfiError::arg(
                    PODVISOR_EINVAL,
                    "opts->listen",
                    format!("opts->listen {listen:?} is not an address"),
                )
            })?;
        }
        if opts.max_pods != 0 {
            config.max_pods = opts.max_pods;
        }
        let started = NodeAgent::start(client, config).map_err(|e| node_error(&e))?;
        let address = started.address().to_string();
        out.set(handle::register::<podvisor_node_agent>(NodeObject {
            agent: Mutex::new(Some(started)),
            address,
        }));
        Ok(())
    })
}

/// Returns the address the node agent serves logs and exec at.
///
/// - `agent`: borrowed.
/// - `addr`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `agent` or `addr` is NULL; `PODVISOR_EHANDLE`
/// for a bad `agent`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_node_agent_address(
    agent: *const podvisor_node_agent,
    addr: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        let agent = handle::get(agent, "agent")?;
        // SAFETY: `addr` is NULL or writable (contract).
        unsafe { Out::new(addr, "addr") }?.set(malloc_string(&agent.address)?);
        Ok(())
    })
}

/// Stops the node agent: every pod and VM it runs is stopped and its lease released. The handle
/// stays valid until freed.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `agent` is NULL; `PODVISOR_EHANDLE` for a bad
/// `agent`; `PODVISOR_ESTATE` if it was already stopped.
///
/// Blocks: until the agent's threads exit. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_node_agent_stop(
    agent: *const podvisor_node_agent,
) -> podvisor_error_code {
    call(|| {
        let agent = handle::get(agent, "agent")?;
        let running = agent.agent.lock().unwrap_or_else(|p| p.into_inner()).take();
        running
            .ok_or_else(|| FfiError::new(PODVISOR_ESTATE, "the node agent was already stopped"))?
            .stop();
        Ok(())
    })
}

/// Frees a node agent handle, stopping the agent first if it still runs. NULL does nothing.
///
/// Ownership: takes `agent`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: until the agent's threads exit. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_node_agent_free(
    agent: *mut podvisor_node_agent,
) -> podvisor_error_code {
    call(|| {
        if let Some(object) = handle::release(agent.cast_const(), "agent")? {
            let running = object
                .agent
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
