//! The control plane's controllers (scheduler, IP addresses, node lifecycle, Service VIPs),
//! started and stopped in the host process. Wraps `podvisor_cluster::controllers::Controllers`
//! over a store client. Several instances may run against one store: they elect one leader
//! through a store lease, and only the leader reconciles.

use std::ffi::c_char;
use std::sync::Mutex;
use std::time::Duration;

use podvisor_cluster::controllers::{ControllerConfig, Controllers};
use podvisor_cluster::objects::RuntimeClass;

use crate::boundary::{Out, arg_opt_str, call};
use crate::error::{FfiError, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Input, Options};
use crate::store::client::podvisor_client;
use podvisor_error_code::*;

/// Running controllers. Created by `podvisor_controllers_start`, freed by
/// `podvisor_controllers_free`.
pub struct podvisor_controllers {
    _private: [u8; 0],
}

impl Opaque for podvisor_controllers {
    type Object = Mutex<Option<Controllers>>;
    const NAME: &'static str = "podvisor_controllers";
}

/// The isolation a pod gets when its manifest names no runtime class.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_runtime_class {
    /// Each pod in its own micro-VM, where every node offers it; namespaces otherwise.
    PODVISOR_RUNTIME_MICROVM = 0,
    /// Linux namespaces and cgroups on the host.
    PODVISOR_RUNTIME_NAMESPACES = 1,
}

/// How the controllers run. Initialise with `podvisor_controllers_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_controllers_options {
    /// `sizeof(podvisor_controllers_options)`, set by `podvisor_controllers_options_init`.
    pub struct_size: usize,
    /// Who this instance is, written to the leader key; NULL for `"controllers"`. Borrowed.
    pub identity: *const c_char,
    /// TTL of the leader lease in milliseconds; a dead leader is replaced after at most this
    /// long. 0 for the default (3000).
    pub lease_ttl_ms: u32,
    /// Milliseconds between reconcile passes; 0 for the default (250).
    pub resync_ms: u32,
    /// Milliseconds a node may be NotReady before its pods fail; 0 for the default (10000).
    pub node_grace_ms: u32,
    /// A `podvisor_runtime_class`: the isolation of pods that name none.
    pub preferred_runtime_class: i32,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_controllers_options {
    const NAME: &'static str = "podvisor_controllers_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_controllers_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            identity: std::ptr::null(),
            lease_ttl_ms: 0,
            resync_ms: 0,
            node_grace_ms: 0,
            preferred_runtime_class: podvisor_runtime_class::PODVISOR_RUNTIME_MICROVM as i32,
        }
    }
}

// SAFETY: pointers and integers only (the runtime class is an `int32_t` checked against the
// enum), for which any value C stores is valid.
unsafe impl Input for podvisor_controllers_options {}

/// Fills `opts` with the defaults: identity `"controllers"`, a 3 s leader lease, a pass every
/// 250 ms, 10 s of node grace, micro-VMs preferred.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_controllers_options_init(
    opts: *mut podvisor_controllers_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

fn millis_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

/// Starts the controllers in this process. They run on a library thread, contend for the
/// leader lease, and reconcile while they hold it. The leader also compacts the store's history
/// every 5 minutes, up to the revision of 5 minutes before, as kube-apiserver does.
///
/// - `client`: borrowed; the controllers keep their own reference.
/// - `opts`: initialised with `podvisor_controllers_options_init`, or NULL for the defaults;
///   borrowed for the call.
/// - `controllers`: receives the new handle, owned by the caller, freed with
///   `podvisor_controllers_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `controllers` is NULL;
/// `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad `identity`, an unknown
/// `preferred_runtime_class` or `struct_size`; `PODVISOR_EHANDLE` for a bad `client`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_controllers_start(
    client: *const podvisor_client,
    opts: *const podvisor_controllers_options,
    controllers: *mut *mut podvisor_controllers,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: `opts` is NULL or readable for its `struct_size`, `controllers` NULL or
        // writable (contract).
        let (opts, out) = unsafe {
            let opts = if opts.is_null() {
                podvisor_controllers_options::defaults()
            } else {
                options::read(opts, "opts")?
            };
            (opts, Out::new(controllers, "controllers")?)
        };
        // SAFETY: `identity` is NULL or NUL-terminated (contract).
        let identity = unsafe { arg_opt_str(opts.identity, "opts->identity") }?;
        let defaults = ControllerConfig::default();
        let preferred_runtime_class = match opts.preferred_runtime_class {
            0 => RuntimeClass::Microvm,
            1 => RuntimeClass::Namespaces,
            other => {
                return Err(FfiError::arg(
                    PODVISOR_EINVAL,
                    "opts->preferred_runtime_class",
                    format!("{other} is not a podvisor_runtime_class"),
                ));
            }
        };
        let config = ControllerConfig {
            identity: identity.map_or(defaults.identity, str::to_owned),
            lease_ttl: millis_or(opts.lease_ttl_ms, defaults.lease_ttl),
            resync: millis_or(opts.resync_ms, defaults.resync),
            node_grace: millis_or(opts.node_grace_ms, defaults.node_grace),
            preferred_runtime_class,
            compaction_interval: defaults.compaction_interval,
        };
        let running = Controllers::start(client, config);
        out.set(handle::register::<podvisor_controllers>(Mutex::new(Some(
            running,
        ))));
        Ok(())
    })
}

/// Stops the controllers and waits for the current reconcile pass to end; the leader lease
/// then lapses and another instance takes over. The handle stays valid until freed.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `controllers` is NULL; `PODVISOR_EHANDLE` for a
/// bad handle; `PODVISOR_ESTATE` if they were already stopped.
///
/// Blocks: until the controller thread exits (at most one pass). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_controllers_stop(
    controllers: *const podvisor_controllers,
) -> podvisor_error_code {
    call(|| {
        let object = handle::get(controllers, "controllers")?;
        let running = object.lock().unwrap_or_else(|p| p.into_inner()).take();
        running
            .ok_or_else(|| FfiError::new(PODVISOR_ESTATE, "the controllers were already stopped"))?
            .stop();
        Ok(())
    })
}

/// Frees a controllers handle, stopping them first if they still run. NULL does nothing.
///
/// Ownership: takes `controllers`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: as `podvisor_controllers_stop`. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_controllers_free(
    controllers: *mut podvisor_controllers,
) -> podvisor_error_code {
    call(|| {
        if let Some(object) = handle::release(controllers.cast_const(), "controllers")? {
            if let Some(running) = object.lock().unwrap_or_else(|p| p.into_inner()).take() {
                running.stop();
            }
        }
        Ok(())
    })
}
