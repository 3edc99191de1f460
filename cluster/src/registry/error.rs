//! Errors of the registry: what an operator sees when a read or write of an object fails.

use crate::objects::{Kind, ValidationErrors};

/// What went wrong storing or reading an object.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The object is not valid; nothing was stored.
    #[error("{name} is invalid: {errors}")]
    Invalid {
        /// `Kind/namespace/name`.
        name: String,
        /// Every problem, with its field path.
        errors: ValidationErrors,
    },
    /// Create of an object that exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The object does not exist.
    #[error("{kind} {name:?} not found{}", namespace_suffix(.namespace))]
    NotFound {
        /// Its kind.
        kind: Kind,
        /// Its namespace, empty for cluster-scoped kinds.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// An optimistic update lost a race: the object changed since it was read.
    #[error(
        "conflict: {name} was modified (resourceVersion {current}, expected {expected}); read it again and retry"
    )]
    Conflict {
        /// `Kind/namespace/name`.
        name: String,
        /// The resourceVersion the writer read.
        expected: u64,
        /// The resourceVersion stored now; 0 when it was deleted.
        current: u64,
    },
    /// A stored value is not a valid object: the store holds something podvisor did not write.
    #[error("stored value at {key} is not a valid object: {reason}")]
    Corrupt {
        /// The store key.
        key: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The store could not be reached or refused the request.
    #[error("store request failed")]
    Store(#[from] podvisor_store::StoreError),
}

fn namespace_suffix(namespace: &str) -> String {
    if namespace.is_empty() {
        String::new()
    } else {
        format!(" in namespace {namespace:?}")
    }
}

/// The registry's result type.
pub type Result<T> = std::result::Result<T, RegistryError>;
