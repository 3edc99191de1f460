//! Objects of the control plane (Node, Pod, VirtualMachine, IPPool, Service): apply manifests,
//! get and list as JSON, delete, and watch, and read a pod's logs. Wraps
//! `podvisor_cluster::registry::Registry` and `podvisor_cluster::node::client` over a store
//! client.

use std::ffi::c_char;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use podvisor_cluster::node::client::{self as node_client, NodeClientError};
use podvisor_cluster::objects::{Kind, Object, parse_manifests, read_manifest_path};
use podvisor_cluster::registry::{ObjectEvent, ObjectWatch, Registry, RegistryError};

use crate::boundary::{
    OptOut, Out, arg_non_empty_str, arg_opt_non_empty_str, arg_text, arg_timeout_ms, call,
    malloc_string,
};
use crate::error::{FfiError, FfiResult, chain, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::store::client::podvisor_client;
use crate::store::store_error;
use podvisor_error_code::*;

/// A watch on the objects of one kind. Created by `podvisor_objects_watch`, freed by
/// `podvisor_object_watch_free`.
pub struct podvisor_object_watch {
    _private: [u8; 0],
}

impl Opaque for podvisor_object_watch {
    type Object = Mutex<ObjectWatch>;
    const NAME: &'static str = "podvisor_object_watch";
}

pub(crate) fn registry_error(err: &RegistryError) -> FfiError {
    let code = match err {
        RegistryError::Invalid { .. } => PODVISOR_EINVAL,
        RegistryError::AlreadyExists(_) => PODVISOR_EEXISTS,
        RegistryError::NotFound { .. } => PODVISOR_ENOTFOUND,
        RegistryError::Conflict { .. } => PODVISOR_ECONFLICT,
        RegistryError::Store(store) => {
            return FfiError {
                message: chain(err),
                ..store_error(store)
            };
        }
        _ => PODVISOR_ERROR,
    };
    FfiError::new(code, chain(err))
}

fn arg_kind(kind: &str) -> FfiResult<Kind> {
    kind.parse::<Kind>()
        .map_err(|e| FfiError::arg(PODVISOR_EINVAL, "kind", chain(&e)))
}

fn apply(
    client: *const podvisor_client,
    objects: FfiResult<Vec<Object>>,
    set: *const c_char,
    summary: *mut *mut c_char,
) -> FfiResult<()> {
    let client = handle::get(client, "client")?;
    // SAFETY: `set` is NULL or NUL-terminated, `summary` NULL or writable (contract).
    let (set, summary) = unsafe {
        (
            arg_opt_non_empty_str(set, "set")?,
            Out::new(summary, "summary")?,
        )
    };
    let objects = objects?;
    let registry = Registry::new(client);
    let actions = registry
        .apply(&objects, set.unwrap_or("podvisor"), false, false)
        .map_err(|e| registry_error(&e))?;
    let lines: Vec<String> = actions.iter().map(|a| a.summary()).collect();
    summary.set(malloc_string(&lines.join("\n"))?);
    Ok(())
}

/// Applies manifests given as text (YAML or JSON, one or more documents): each object is
/// created, or updated where it differs from the stored one, and left alone otherwise.
///
/// - `client`: borrowed.
/// - `text`, `text_len`: the manifests, UTF-8 without NUL; borrowed for the call.
/// - `set`: the apply set the objects belong to, not empty, or NULL for `"podvisor"`; borrowed.
/// - `summary`: receives one line per object (`"pod/default/web created"`), owned by the
///   caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `summary` is NULL, or `text` is NULL
/// with a non-zero length; `PODVISOR_EUTF8` for text or a `set` that is not UTF-8;
/// `PODVISOR_EINVAL` for text with a NUL, manifests that do not parse, objects that fail
/// validation, or an empty or too long `set`;
/// `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_ECONFLICT` if another writer changed an
/// object meanwhile (apply again); store errors as for `podvisor_client_put`. Objects applied
/// before a failure stay applied.
///
/// Blocks: yes, one store round trip per object. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_objects_apply(
    client: *const podvisor_client,
    text: *const c_char,
    text_len: usize,
    set: *const c_char,
    summary: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `text` is NULL or readable for `text_len` bytes (contract).
        let text = unsafe { arg_text(text, text_len, "text") }?;
        let objects = parse_manifests(text, "text")
            .map_err(|e| FfiError::arg(PODVISOR_EINVAL, "text", chain(&e)));
        apply(client, objects, set, summary)
    })
}

/// Applies the manifests of a file, or of every `.yaml`, `.yml` and `.json` file of a
/// directory, as `podvisor_objects_apply` does.
///
/// - `path`: the file or directory, UTF-8; borrowed for the call.
///
/// Returns as `podvisor_objects_apply`, and `PODVISOR_ENOTFOUND` or `PODVISOR_EOS` if `path`
/// cannot be read.
///
/// Blocks: yes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_objects_apply_file(
    client: *const podvisor_client,
    path: *const c_char,
    set: *const c_char,
    summary: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        // SAFETY: `path` is NULL or NUL-terminated (contract).
        let path = unsafe { arg_non_empty_str(path, "path") }?;
        let objects = read_manifest_path(Path::new(path)).map_err(|e| {
            let code = match &e {
                podvisor_cluster::objects::ManifestError::Read { source, .. } => {
                    FfiError::os("", source).code
                }
                _ => PODVISOR_EINVAL,
            };
            FfiError::arg(code, "path", chain(&e))
        });
        apply(client, objects, set, summary)
    })
}

/// Reads one object as JSON, with its `resourceVersion`.
///
/// - `client`: borrowed.
/// - `kind`: `"Pod"`, `"Node"`, `"VirtualMachine"`, `"IPPool"` or `"Service"` (or their
///   lower-case and plural forms); borrowed.
/// - `namespace`: the namespace, not empty, or NULL for cluster-scoped kinds; borrowed.
/// - `name`: the name; borrowed.
/// - `json`: receives the object, owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if there is no such object; `PODVISOR_ENULL` if
/// `client`, `kind`, `name` or `json` is NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad
/// string (not UTF-8, empty or too long) or an unknown kind; `PODVISOR_EHANDLE` for a bad
/// `client`; store errors as for `podvisor_client_get`.
///
/// Blocks: yes, one round trip to the leader. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_objects_get(
    client: *const podvisor_client,
    kind: *const c_char,
    namespace: *const c_char,
    name: *const c_char,
    json: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the strings are NULL or NUL-terminated, `json` NULL or writable (contract).
        let (kind, namespace, name, json) = unsafe {
            (
                arg_kind(arg_non_empty_str(kind, "kind")?)?,
                arg_opt_non_empty_str(namespace, "namespace")?,
                arg_non_empty_str(name, "name")?,
                Out::new(json, "json")?,
            )
        };
        let object = Registry::new(client)
            .get(kind, namespace.unwrap_or(""), name)
            .map_err(|e| registry_error(&e))?;
        json.set(malloc_string(&object.to_json())?);
        Ok(())
    })
}

/// Lists the objects of a kind as a JSON array.
///
/// - `client`: borrowed; `kind` as for `podvisor_objects_get`.
/// - `namespace`: only this namespace, not empty, or NULL for all; borrowed.
/// - `json`: receives the array, owned by the caller, freed with `podvisor_free`.
/// - `revision`: receives the store revision of the read, from which `podvisor_objects_watch`
///   continues without missing a change; may be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `kind` or `json` is NULL;
/// `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long) or an
/// unknown kind; `PODVISOR_EINVAL` for a misaligned `revision`; `PODVISOR_EHANDLE` for a bad
/// `client`; store errors as for `podvisor_client_range`.
///
/// Blocks: yes, one round trip to the leader. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_objects_list(
    client: *const podvisor_client,
    kind: *const c_char,
    namespace: *const c_char,
    json: *mut *mut c_char,
    revision: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the strings are NULL or NUL-terminated, `json` and `revision` NULL or
        // writable (contract).
        let (kind, namespace, json, revision) = unsafe {
            (
                arg_kind(arg_non_empty_str(kind, "kind")?)?,
                arg_opt_non_empty_str(namespace, "namespace")?,
                Out::new(json, "json")?,
                OptOut::new(revision, "revision")?,
            )
        };
        let (objects, read_at) = Registry::new(client)
            .list(kind, namespace)
            .map_err(|e| registry_error(&e))?;
        let array = serde_json::Value::Array(objects.iter().map(Object::to_json_value).collect());
        json.set(malloc_string(&array.to_string())?);
        revision.set(read_at);
        Ok(())
    })
}

/// Deletes an object, or marks it for deletion when it has finalizers.
///
/// - `client`: borrowed; `kind`, `namespace`, `name` as for `podvisor_objects_get`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENOTFOUND` if there is no such object; `PODVISOR_ECONFLICT`
/// if another writer changed it meanwhile; `PODVISOR_ENULL` if `client`, `kind` or `name` is
/// NULL; `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long)
/// or an unknown kind; `PODVISOR_EHANDLE` for a bad `client`; store errors as for
/// `podvisor_client_delete`.
///
/// Blocks: yes. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_objects_delete(
    client: *const podvisor_client,
    kind: *const c_char,
    namespace: *const c_char,
    name: *const c_char,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the strings are NULL or NUL-terminated (contract).
        let (kind, namespace, name) = unsafe {
            (
                arg_kind(arg_non_empty_str(kind, "kind")?)?,
                arg_opt_non_empty_str(namespace, "namespace")?,
                arg_non_empty_str(name, "name")?,
            )
        };
        Registry::new(client)
            .delete(kind, namespace.unwrap_or(""), name)
            .map_err(|e| registry_error(&e))?;
        Ok(())
    })
}

/// Watches the objects of a kind, for polling with `podvisor_object_watch_next`.
///
/// - `client`: borrowed; the watch keeps working after it is freed.
/// - `kind`, `namespace` (NULL for all): as for `podvisor_objects_list`.
/// - `resource_version`: deliver the changes after this revision (a list's revision), or 0 for
///   changes from now.
/// - `watch`: receives the new handle, owned by the caller, freed with
///   `podvisor_object_watch_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `kind` or `watch` is NULL;
/// `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long) or an
/// unknown kind; `PODVISOR_EHANDLE` for a bad `client`; store errors.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_objects_watch(
    client: *const podvisor_client,
    kind: *const c_char,
    namespace: *const c_char,
    resource_version: u64,
    watch: *mut *mut podvisor_object_watch,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the strings are NULL or NUL-terminated, `watch` NULL or writable (contract).
        let (kind, namespace, out) = unsafe {
            (
                arg_kind(arg_non_empty_str(kind, "kind")?)?,
                arg_opt_non_empty_str(namespace, "namespace")?,
                Out::new(watch, "watch")?,
            )
        };
        let started = Registry::new(client)
            .watch(kind, namespace, resource_version)
            .map_err(|e| registry_error(&e))?;
        out.set(handle::register::<podvisor_object_watch>(Mutex::new(
            started,
        )));
        Ok(())
    })
}

/// Waits for the next change of an object watch, as one JSON object:
/// `{"type":"PUT","object":{...}}`, `{"type":"DELETE","key":"...","revision":N}`, or
/// `{"type":"PROGRESS","revision":N}` (everything up to N has been delivered).
///
/// - `watch`: borrowed.
/// - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
/// - `json`: receives the event, owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ETIMEOUT` if nothing came in time;
/// `PODVISOR_EUNAVAILABLE` once per outage when no master has answered for the client's
/// timeout (the watch keeps trying; call again); `PODVISOR_ECOMPACTED` if the start revision
/// was compacted away, or another code if the watch failed;
/// `PODVISOR_ENULL` if `watch` or `json` is NULL; `PODVISOR_EINVAL` for a negative timeout
/// other than -1; `PODVISOR_EHANDLE` for a bad `watch`.
///
/// Blocks: yes, up to the timeout. Threads: any; calls on one watch are serialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_object_watch_next(
    watch: *const podvisor_object_watch,
    timeout_ms: i64,
    json: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        let watch = handle::get(watch, "watch")?;
        // SAFETY: `json` is NULL or writable (contract).
        let out = unsafe { Out::new(json, "json") }?;
        let timeout = arg_timeout_ms(timeout_ms, "timeout_ms")?
            .unwrap_or(Duration::from_secs(3600 * 24 * 365));
        let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
        let event = watch
            .next_timeout(timeout)
            .map_err(|e| registry_error(&e))?;
        let value = match event {
            None => {
                return Err(FfiError::new(
                    PODVISOR_ETIMEOUT,
                    "no change arrived in time",
                ));
            }
            Some(ObjectEvent::Put(object)) => {
                serde_json::json!({"type": "PUT", "object": object.to_json_value()})
            }
            Some(ObjectEvent::Deleted { key, revision }) => {
                serde_json::json!({"type": "DELETE", "key": key, "revision": revision})
            }
            Some(ObjectEvent::Progress(revision)) => {
                serde_json::json!({"type": "PROGRESS", "revision": revision})
            }
        };
        out.set(malloc_string(&value.to_string())?);
        Ok(())
    })
}

/// Frees an object watch. NULL does nothing.
///
/// Ownership: takes `watch`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_object_watch_free(
    watch: *mut podvisor_object_watch,
) -> podvisor_error_code {
    call(|| handle::release(watch.cast_const(), "watch").map(drop))
}

fn node_client_error(err: &NodeClientError) -> FfiError {
    match err {
        NodeClientError::Registry(e) => FfiError {
            message: chain(err),
            ..registry_error(e)
        },
        NodeClientError::NoContainer { .. } => {
            FfiError::arg(PODVISOR_ENOTFOUND, "container", chain(err))
        }
        NodeClientError::NotReachable(_) => FfiError::new(PODVISOR_ESTATE, chain(err)),
        NodeClientError::Agent(_) => FfiError::new(PODVISOR_EUNAVAILABLE, chain(err)),
    }
}

/// Reads a pod container's log as it is now, from the node agent that runs the pod (as
/// `kubectl logs` does): what the container wrote to stdout and stderr, one line per line,
/// each ending in a newline.
///
/// - `client`: borrowed.
/// - `namespace`: the pod's namespace, not empty, or NULL for `"default"`; borrowed.
/// - `pod`: the pod's name; borrowed.
/// - `container`: the container, not empty, or NULL for the pod's first; borrowed.
/// - `text`: receives the log, NUL-terminated, owned by the caller, freed with `podvisor_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client`, `pod` or `text` is NULL;
/// `PODVISOR_EUTF8` or `PODVISOR_EINVAL` for a bad string (not UTF-8, empty or too long);
/// `PODVISOR_EHANDLE` for a bad `client`; `PODVISOR_ENOTFOUND` if there is no such pod or container; `PODVISOR_ESTATE` if
/// the pod is not bound to a node yet or its node has published no address;
/// `PODVISOR_EUNAVAILABLE` if the node agent cannot be reached or refuses (for example, the
/// pod's sandbox is not created yet); store errors as for `podvisor_client_get`.
///
/// Blocks: yes, two store reads and one request to the node agent. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_pod_logs(
    client: *const podvisor_client,
    namespace: *const c_char,
    pod: *const c_char,
    container: *const c_char,
    text: *mut *mut c_char,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the strings are NULL or NUL-terminated, `text` NULL or writable (contract).
        let (namespace, pod, container, text) = unsafe {
            (
                arg_opt_non_empty_str(namespace, "namespace")?,
                arg_non_empty_str(pod, "pod")?,
                arg_opt_non_empty_str(container, "container")?,
                Out::new(text, "text")?,
            )
        };
        let registry = Registry::new(client);
        let namespace = namespace.unwrap_or("default");
        let target = node_client::locate(&registry, namespace, pod, container)
            .map_err(|e| node_client_error(&e))?;
        let mut log = String::new();
        for line in node_client::logs(&target, false).map_err(|e| node_client_error(&e))? {
            let line = line.map_err(|e| node_client_error(&e))?;
            log.push_str(&line.text);
            if !line.partial {
                log.push('\n');
            }
        }
        text.set(malloc_string(&log.replace('\0', "\u{fffd}"))?);
        Ok(())
    })
}
