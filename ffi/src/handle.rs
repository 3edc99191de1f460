//! Opaque handles and the registry of live ones.
//!
//! A handle is the address of a reference-counted Rust object, handed to C as a pointer to an
//! opaque struct. libpodvisor never dereferences a handle it is given: it looks the address up in
//! a registry of live handles, which also records each handle's type. So a pointer that was never
//! a handle, a handle already freed, or a handle of another type is refused with
//! `PODVISOR_EHANDLE` instead of being used. Lookups take a reference, so a call in progress keeps
//! its object alive even if another thread frees the handle meanwhile; the object goes when the
//! last call using it returns.
//!
//! One case cannot be detected: after a handle is freed and its object dropped, the allocator
//! may reuse the address for a new handle of the same type, and the stale pointer then names the
//! new object.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{FfiError, FfiResult, podvisor_error_code};

/// Ties a C opaque type to the Rust object its handles point at.
pub(crate) trait Opaque: 'static {
    /// The object behind the handle.
    type Object: Send + Sync + 'static;
    /// The C type's name, for messages.
    const NAME: &'static str;
}

struct Entry {
    type_name: &'static str,
    object: Arc<dyn Any + Send + Sync>,
}

fn registry() -> MutexGuard<'static, HashMap<usize, Entry>> {
    static REGISTRY: OnceLock<Mutex<HashMap<usize, Entry>>> = OnceLock::new();
    // A panic while the lock is held cannot leave the map half-updated (every update is one
    // insert or remove), so a poisoned lock is still safe to use.
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `object` and returns the handle the host will hold.
pub(crate) fn register<C: Opaque>(object: C::Object) -> *mut C {
    let object = Arc::new(object);
    let address = Arc::as_ptr(&object) as usize;
    registry().insert(
        address,
        Entry {
            type_name: C::NAME,
            object,
        },
    );
    address as *mut C
}

fn check<C: Opaque>(entry: Option<&Entry>, handle: *const C, name: &'static str) -> FfiResult<()> {
    match entry {
        None => Err(FfiError::arg(
            podvisor_error_code::PODVISOR_EHANDLE,
            name,
            format!(
                "{name} ({handle:p}) is not a live {} handle: it was freed or never returned by libpodvisor",
                C::NAME
            ),
        )),
        Some(entry) if entry.type_name != C::NAME => Err(FfiError::arg(
            podvisor_error_code::PODVISOR_EHANDLE,
            name,
            format!(
                "{name} is a {} handle where a {} was expected",
                entry.type_name,
                C::NAME
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn downcast<C: Opaque>(object: Arc<dyn Any + Send + Sync>) -> FfiResult<Arc<C::Object>> {
    object.downcast::<C::Object>().map_err(|_| {
        FfiError::new(
            podvisor_error_code::PODVISOR_EPANIC,
            format!(
                "internal error: the registry holds a {} of the wrong Rust type",
                C::NAME
            ),
        )
    })
}

/// Looks up a handle argument that must not be NULL, and takes a reference to its object.
pub(crate) fn get<C: Opaque>(handle: *const C, name: &'static str) -> FfiResult<Arc<C::Object>> {
    if handle.is_null() {
        return Err(FfiError::arg(
            podvisor_error_code::PODVISOR_ENULL,
            name,
            format!("{name} is NULL"),
        ));
    }
    let registry = registry();
    let entry = registry.get(&(handle as usize));
    check(entry, handle, name)?;
    let object = entry.map(|e| Arc::clone(&e.object));
    drop(registry);
    object.map_or_else(
        || {
            Err(FfiError::new(
                podvisor_error_code::PODVISOR_EPANIC,
                "handle vanished",
            ))
        },
        downcast::<C>,
    )
}

/// Unregisters a handle for a `*_free` call. NULL gives `Ok(None)`: freeing NULL does nothing.
///
/// The object is dropped when the returned reference and any held by calls in progress go.
pub(crate) fn release<C: Opaque>(
    handle: *const C,
    name: &'static str,
) -> FfiResult<Option<Arc<C::Object>>> {
    if handle.is_null() {
        return Ok(None);
    }
    let mut registry = registry();
    check(registry.get(&(handle as usize)), handle, name)?;
    let entry = registry.remove(&(handle as usize));
    drop(registry);
    match entry {
        Some(entry) => downcast::<C>(entry.object).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podvisor_error_code::*;

    struct Apple;
    struct Pear;
    impl Opaque for Apple {
        type Object = u32;
        const NAME: &'static str = "apple";
    }
    impl Opaque for Pear {
        type Object = String;
        const NAME: &'static str = "pear";
    }

    #[test]
    fn test_handle_lookup_detects_wrong_type_and_freed_handles() {
        let apple = register::<Apple>(7);
        assert_eq!(get(apple, "a").map(|v| *v), Ok(7));
        let as_pear = apple.cast::<Pear>();
        assert_eq!(get(as_pear, "p").map_err(|e| e.code), Err(PODVISOR_EHANDLE));
        assert_eq!(
            release(as_pear, "p").map_err(|e| e.code),
            Err(PODVISOR_EHANDLE)
        );
        assert!(matches!(release(apple, "a"), Ok(Some(_))));
        assert_eq!(get(apple, "a").map_err(|e| e.code), Err(PODVISOR_EHANDLE));
        assert_eq!(
            release(apple, "a").map_err(|e| e.code),
            Err(PODVISOR_EHANDLE)
        );
        assert_eq!(
            get(std::ptr::null::<Apple>(), "a").map_err(|e| e.code),
            Err(PODVISOR_ENULL)
        );
        assert!(matches!(release(std::ptr::null::<Apple>(), "a"), Ok(None)));
    }

    #[test]
    fn test_a_call_in_progress_keeps_a_freed_object_alive() {
        let pear = register::<Pear>("ripe".to_owned());
        let held = get(pear, "p").expect("live handle");
        drop(release(pear, "p"));
        assert_eq!(held.as_str(), "ripe");
    }
}
