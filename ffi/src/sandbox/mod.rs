//! Sandboxes: a pod's containers run at either isolation level (Linux namespaces, or a
//! micro-VM), created, started, exec'd into, stopped and destroyed. Wraps `podvisor_sandbox`.
//!
//! - [`config`]: the options structs and their reading;
//! - [`process`]: the processes of a sandbox (a container's own, or exec'd), their output,
//!   stdin, signals and exit.
//!
//! A `podvisor_sandbox` owns its sandbox until `podvisor_sandbox_destroy`; after that the handle
//! only refuses calls with `PODVISOR_ESTATE` until it is freed. Process handles do not keep a
//! sandbox alive: once it is destroyed, their calls that reach the agent fail.

pub mod config;
pub mod process;

use std::ffi::c_char;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::podvisor_sandbox::image::ImageError;
use ::podvisor_sandbox::network::NetworkError;
use ::podvisor_sandbox::{ProcessRef, Sandbox, SandboxError};
use podvisor_agent::protocol::ErrorKind;

use crate::boundary::{Out, arg_non_empty_str, call, malloc_string};
use crate::error::{FfiError, FfiResult, chain, podvisor_error_code};
use crate::handle::{self, Opaque};
use config::{podvisor_container_options, podvisor_sandbox_options, sandbox_config};
use podvisor_error_code::*;
use process::{podvisor_exit_status, podvisor_process};

/// A sandbox. Created by `podvisor_sandbox_create`, freed by `podvisor_sandbox_free`.
pub struct podvisor_sandbox {
    _private: [u8; 0],
}

/// What a `podvisor_sandbox` holds; `None` once destroyed.
pub(crate) struct SandboxObject {
    sandbox: Mutex<Option<Arc<Sandbox>>>,
    /// Numbers the exec ids of this sandbox's processes.
    next_exec: AtomicU64,
}

impl Opaque for podvisor_sandbox {
    type Object = SandboxObject;
    const NAME: &'static str = "podvisor_sandbox";
}

impl SandboxObject {
    /// The sandbox, for the duration of one call; `PODVISOR_ESTATE` once destroyed.
    fn live(&self) -> FfiResult<Arc<Sandbox>> {
        let sandbox = self.sandbox.lock().unwrap_or_else(|p| p.into_inner());
        sandbox
            .clone()
            .ok_or_else(|| FfiError::new(PODVISOR_ESTATE, "the sandbox was destroyed"))
    }

    /// Takes the sandbox out of the handle, waits for calls in progress to let go of it, and
    /// destroys it. `None` if it was already destroyed.
    fn destroy(&self) -> Option<Result<(), SandboxError>> {
        let mut shared = self
            .sandbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        // Calls in progress hold the sandbox only while they run (process handles hold a weak
        // reference), so this ends once they return.
        let sandbox = loop {
            match Arc::try_unwrap(shared) {
                Ok(sandbox) => break sandbox,
                Err(still_shared) => {
                    shared = still_shared;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        Some(sandbox.destroy())
    }
}

/// Turns the agent's refusals and the sandbox layer's errors into the codes the header
/// documents for them.
pub(crate) fn sandbox_error(err: &SandboxError) -> FfiError {
    let message = chain(err);
    let (code, argument) = match err {
        SandboxError::Refused { .. } => (PODVISOR_EUNSUPPORTED, None),
        SandboxError::Agent(agent) => match agent.kind {
            ErrorKind::NotFound => (PODVISOR_ENOTFOUND, None),
            ErrorKind::AlreadyExists => (PODVISOR_EEXISTS, None),
            ErrorKind::InvalidState => (PODVISOR_ESTATE, None),
            ErrorKind::InvalidArgument => (PODVISOR_EINVAL, None),
            ErrorKind::System => (PODVISOR_EOS, None),
        },
        SandboxError::Protocol(_) | SandboxError::Disconnected(_) => (PODVISOR_EUNAVAILABLE, None),
        SandboxError::Timeout { .. } => (PODVISOR_ETIMEOUT, None),
        SandboxError::Image { source, .. } => match source {
            ImageError::NotFound { .. } => (PODVISOR_ENOTFOUND, Some("opts->image")),
            ImageError::Io { .. } => (PODVISOR_EOS, None),
            _ => (PODVISOR_EINVAL, Some("opts->image")),
        },
        SandboxError::Network(NetworkError::Invalid(_)) => (PODVISOR_EINVAL, Some("opts->address")),
        SandboxError::Network(_) => (PODVISOR_EOS, None),
        SandboxError::InvalidArgument(_) => (PODVISOR_EINVAL, None),
        SandboxError::InvalidName { what, .. } => (PODVISOR_EINVAL, Some(name_argument(what))),
        SandboxError::AlreadyExists { what, .. } => (PODVISOR_EEXISTS, Some(name_argument(what))),
        SandboxError::Host { source, .. } => (FfiError::os("", source).code, None),
    };
    FfiError {
        code,
        message,
        argument,
    }
}

/// The options field that names a sandbox (`"sandbox id"`, `"sandbox"`) or a container.
fn name_argument(what: &str) -> &'static str {
    if what.starts_with("sandbox") {
        "opts->id"
    } else {
        "opts->name"
    }
}

/// Runs `f` on the live sandbox behind a handle with a container name argument.
///
/// # Safety
/// `container` is NULL or a NUL-terminated string.
unsafe fn with_container<T>(
    sandbox: *const podvisor_sandbox,
    container: *const c_char,
    f: impl FnOnce(&Arc<Sandbox>, &SandboxObject, &str) -> FfiResult<T>,
) -> FfiResult<T> {
    let object = handle::get(sandbox, "sandbox")?;
    // SAFETY: forwarded contract.
    let container = unsafe { arg_non_empty_str(container, "container") }?;
    let live = object.live()?;
    f(&live, &object, container)
}

/// Checks whether this host can run sandboxes as `opts` asks, without creating one: micro-VMs
/// need hardware-assisted KVM, a guest image and a vsock transport; namespaces need root, user
/// namespaces and a cgroup hierarchy.
///
/// - `opts`: as for `podvisor_sandbox_create`; borrowed for the call.
///
/// Returns `PODVISOR_OK` if it can; `PODVISOR_EUNSUPPORTED` with the reason if it cannot; the
/// argument errors of `podvisor_sandbox_create`.
///
/// Blocks: briefly (probes KVM). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_check_host(
    opts: *const podvisor_sandbox_options,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `opts` is NULL or readable for its `struct_size` (contract).
        let config = unsafe { sandbox_config(opts) }?;
        Sandbox::check_host(&config).map_err(|e| sandbox_error(&e))
    })
}

/// Creates a sandbox: launches its agent as PID 1 (in new namespaces, or in a micro-VM),
/// connects to it and sets up its network. It holds no containers yet.
///
/// - `opts`: initialised with `podvisor_sandbox_options_init`, `id`, `state_dir` and (for
///   namespaces) `agent_binary` set; it and its strings are borrowed for the call.
/// - `sandbox`: receives the new handle, owned by the caller, freed with
///   `podvisor_sandbox_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts`, a required string or `sandbox` is NULL;
/// `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an unknown
/// `struct_size`, an empty or unusable id, an isolation outside the enum, or a bad cgroup path,
/// address, vCPU count, memory size or log bound (the argument names which);
/// `PODVISOR_ENOTFOUND` if the agent binary does not exist; `PODVISOR_EEXISTS` if a sandbox of
/// that id exists in `state_dir`; `PODVISOR_EUNSUPPORTED` if the host cannot give the
/// isolation asked for (micro-VMs without hardware-assisted KVM or vsock, namespaces without
/// root), with the reason; `PODVISOR_EUNAVAILABLE` if the agent did not answer;
/// `PODVISOR_EOS` if a host step failed. Nothing is left behind on failure.
///
/// Blocks: until the agent answers (tens of milliseconds for namespaces). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_create(
    opts: *const podvisor_sandbox_options,
    sandbox: *mut *mut podvisor_sandbox,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `opts` is NULL or readable for its `struct_size`, `sandbox` NULL or writable.
        let (config, out) = unsafe { (sandbox_config(opts)?, Out::new(sandbox, "sandbox")?) };
        let created = Sandbox::create(config).map_err(|e| sandbox_error(&e))?;
        out.set(handle::register::<podvisor_sandbox>(SandboxObject {
            sandbox: Mutex::new(Some(Arc::new(created))),
            next_exec: AtomicU64::new(1),
        }));
        Ok(())
    })
}

/// Creates a container in the sandbox: unpacks its image (or checks its root directory) and
/// prepares its process, which waits for `podvisor_sandbox_start`.
///
/// - `sandbox`: borrowed.
/// - `opts`: initialised with `podvisor_container_options_init`, `name` and one of `image` or
///   `rootfs` set; it, its strings and arrays are borrowed for the call.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox`, `opts` or `opts->name` is NULL, both
/// `opts->image` and `opts->rootfs` are NULL, or an array is NULL with a non-zero length (or
/// holds NULL); `PODVISOR_EUTF8` for a string that is not UTF-8; `PODVISOR_EINVAL` for an
/// unknown `struct_size`, a bad name, both image fields set, an empty string, or an image that
/// is not a valid OCI layout or root; `PODVISOR_ENOTFOUND` if the image does not exist;
/// `PODVISOR_EEXISTS` if the sandbox has a container of that name; `PODVISOR_EHANDLE` for a
/// bad `sandbox`; `PODVISOR_ESTATE` if it was destroyed; `PODVISOR_EOS` if unpacking or the
/// agent's setup failed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
///
/// Blocks: while the image is unpacked and the agent prepares the container. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_create_container(
    sandbox: *const podvisor_sandbox,
    opts: *const podvisor_container_options,
) -> podvisor_error_code {
    call(|| {
        let object = handle::get(sandbox, "sandbox")?;
        // SAFETY: `opts` is NULL or valid as the header documents (contract).
        let (config, image_arg) = unsafe { config::container_config(opts) }?;
        let live = object.live()?;
        live.create_container(&config).map_err(|e| match e {
            SandboxError::Image { .. } => FfiError {
                argument: Some(image_arg),
                ..sandbox_error(&e)
            },
            _ => sandbox_error(&e),
        })
    })
}

/// Starts a created container's process, and returns a handle on it to read its output, write
/// its stdin, signal it and wait for it.
///
/// - `sandbox`: borrowed.
/// - `container`: the container's name; borrowed for the call.
/// - `process`: receives the process handle, owned by the caller, freed with
///   `podvisor_process_free`; or NULL when the caller does not want one (the output then only
///   goes to the container's log).
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` or `container` is NULL;
/// `PODVISOR_EINVAL` or `PODVISOR_EUTF8` for a bad `container`; `PODVISOR_EHANDLE` for a bad
/// `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container; `PODVISOR_ESTATE` if it was
/// already started or the sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
/// A program that cannot be run is not an error of this call: the process exits with 127 (not
/// found) or 126, and says why on its stderr, as `podvisor_sandbox_exec` describes.
///
/// Blocks: until the agent has started the process (milliseconds). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_start(
    sandbox: *const podvisor_sandbox,
    container: *const c_char,
    process: *mut *mut podvisor_process,
) -> podvisor_error_code {
    call(|| {
        let slot = if process.is_null() {
            None
        } else {
            // SAFETY: `process` is writable (contract).
            Some(unsafe { Out::new(process, "process") }?)
        };
        // SAFETY: `container` is NULL or NUL-terminated (contract).
        unsafe {
            with_container(sandbox, container, |live, _, container| {
                let main = ProcessRef::main(container);
                // Subscribed before the start, so no output is missed.
                let out = slot.map(|slot| (slot, live.subscribe(&main)));
                live.start(container).map_err(|e| sandbox_error(&e))?;
                if let Some((slot, events)) = out {
                    slot.set(process::register(live, main, events));
                }
                Ok(())
            })
        }
    })
}

/// Stops a container: SIGTERM to its process, then SIGKILL to everything in it once
/// `grace_ms` has passed. The container stays, stopped, until removed.
///
/// - `sandbox`: borrowed.
/// - `container`: the container's name; borrowed for the call.
/// - `grace_ms`: milliseconds between SIGTERM and SIGKILL.
/// - `exit`: initialised with `podvisor_exit_status_init`, filled with how the process ended;
///   or NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` or `container` is NULL;
/// `PODVISOR_EINVAL` for a bad `container` or an unknown `exit->struct_size`;
/// `PODVISOR_EHANDLE` for a bad `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container;
/// `PODVISOR_ESTATE` if it never started or the sandbox was destroyed;
/// `PODVISOR_EUNAVAILABLE` if the agent is gone.
///
/// Blocks: until the process ended (at most about `grace_ms`). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_stop_container(
    sandbox: *const podvisor_sandbox,
    container: *const c_char,
    grace_ms: u64,
    exit: *mut podvisor_exit_status,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `exit` is NULL or readable and writable for its `struct_size` (contract).
        let exit = unsafe { process::exit_out(exit) }?;
        // SAFETY: `container` is NULL or NUL-terminated (contract).
        let status = unsafe {
            with_container(sandbox, container, |live, _, container| {
                live.stop(container, Duration::from_millis(grace_ms))
                    .map_err(|e| sandbox_error(&e))
            })
        }?;
        exit.set(status);
        Ok(())
    })
}

/// Removes a container: kills whatever of it still runs and releases its cgroup, its root (if
/// unpacked from an image) and its log.
///
/// - `sandbox`: borrowed.
/// - `container`: the container's name; borrowed for the call.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` or `container` is NULL;
/// `PODVISOR_EINVAL` or `PODVISOR_EUTF8` for a bad `container`; `PODVISOR_EHANDLE` for a bad
/// `sandbox`; `PODVISOR_ENOTFOUND` if there is no such container; `PODVISOR_ESTATE` if the
/// sandbox was destroyed; `PODVISOR_EUNAVAILABLE` if the agent is gone.
///
/// Blocks: until the container's processes are gone. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_remove_container(
    sandbox: *const podvisor_sandbox,
    container: *const c_char,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `container` is NULL or NUL-terminated (contract).
        unsafe {
            with_container(sandbox, container, |live, _, container| {
                live.remove_container(container)
                    .map_err(|e| sandbox_error(&e))
            })
        }
    })
}

/// Returns the path of a container's log on the host: one line per output line,
/// `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, rotated to `.log.1` and on past the bound of
/// `opts->log_max_bytes`. Exec'd processes are not logged. The file is removed with the
/// sandbox.
///
/// - `sandbox`: borrowed.
/// - `container`: the container's name; borrowed for the call.
/// - `path`: receives a NUL-terminated string owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK` (also for a container that does not exist: the path is where its log
/// would be); `PODVISOR_ENULL` if an argument is NULL; `PODVISOR_EINVAL` or `PODVISOR_EUTF8`
/// for a bad `container`; `PODVISOR_EHANDLE` for a bad `sandbox`; `PODVISOR_ESTATE` if the
/// sandbox was destroyed.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_log_path(
    sandbox: *const podvisor_sandbox,
    container: *const c_char,
    path: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `path` is NULL or writable (contract).
        let out = unsafe { Out::new(path, "path") }?;
        // SAFETY: `container` is NULL or NUL-terminated (contract).
        let log = unsafe {
            with_container(sandbox, container, |live, _, container| {
                if !::podvisor_sandbox::valid_name(container) {
                    return Err(FfiError::arg(
                        PODVISOR_EINVAL,
                        "container",
                        format!("container name {container:?} is not a valid name"),
                    ));
                }
                Ok(live.log_path(container))
            })
        }?;
        out.set(malloc_string(&log.to_string_lossy())?);
        Ok(())
    })
}

/// Destroys the sandbox: the agent kills every container and exits, the backend releases the
/// namespaces or VM and the cgroup, the network is torn down, and the sandbox's directory (roots
/// and logs) is removed. The handle stays valid until freed, but every call on it then gives
/// `PODVISOR_ESTATE`, and the calls of its process handles that reach the agent fail.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `sandbox` is NULL; `PODVISOR_EHANDLE` for a bad
/// `sandbox`; `PODVISOR_ESTATE` if it was already destroyed; the code of the first step that
/// failed otherwise (the later steps still ran).
///
/// Blocks: until calls in progress on the sandbox return, then until the agent and every
/// container are gone (up to 10 s for an agent that does not answer). Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_destroy(
    sandbox: *const podvisor_sandbox,
) -> podvisor_error_code {
    call(|| {
        let object = handle::get(sandbox, "sandbox")?;
        object
            .destroy()
            .ok_or_else(|| FfiError::new(PODVISOR_ESTATE, "the sandbox was already destroyed"))?
            .map_err(|e| sandbox_error(&e))
    })
}

/// Frees a sandbox handle, destroying the sandbox first if that was not done (its errors are
/// then not reported). NULL does nothing. Process handles of the sandbox stay valid to free.
///
/// Ownership: takes `sandbox`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: as `podvisor_sandbox_destroy` when the sandbox was not destroyed. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_free(
    sandbox: *mut podvisor_sandbox,
) -> podvisor_error_code {
    call(|| {
        if let Some(object) = handle::release(sandbox.cast_const(), "sandbox")? {
            drop(object.destroy());
        }
        Ok(())
    })
}
