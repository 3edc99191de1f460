//! The registry: objects stored in the replicated store, the way Kubernetes' API server stores
//! them.
//!
//! Each object lives under [`Object::store_key`] as JSON. Its `resourceVersion` is the store's
//! mod revision of that key, filled in on every read, and every update compares it (optimistic
//! concurrency): a writer that read an old version gets [`RegistryError::Conflict`] and nothing
//! is written. Deleting an object that has finalizers only marks it with a deletion timestamp;
//! it goes when the last finalizer is removed. Watches by kind and namespace resume from a
//! resourceVersion.

mod error;
mod watch;

use std::sync::Arc;

use podvisor_store::Client;
use podvisor_store::api::{
    Compare, CompareOp, CompareTarget, DeleteRequest, KeyRange, PutRequest, RangeRequest, Txn,
    TxnOp,
};

pub use error::{RegistryError, Result};
pub use watch::{ObjectEvent, ObjectWatch};

use crate::apply::{self, ApplyAction, ApplyOutcome, Stored};
use crate::objects::{Kind, Object, Timestamp};

/// Reads and writes objects through a store client.
#[derive(Clone)]
pub struct Registry {
    client: Arc<Client>,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The object is gone.
    Removed,
    /// The object has finalizers: it is marked for deletion and stays until they are cleared.
    Pending(Box<Object>),
}

impl Registry {
    /// A registry over `client`.
    pub fn new(client: Arc<Client>) -> Self {
        Registry { client }
    }

    /// The store client underneath, for callers that also need raw keys (IPAM, leases).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads one object with a linearizable read.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when absent; store and decoding failures.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Object> {
        let key = object_key(kind, namespace, name);
        let resp = self.client.range(RangeRequest {
            range: KeyRange::key(key.as_bytes()),
            ..RangeRequest::default()
        })?;
        match resp.kvs.first() {
            Some(kv) => decode(&kv.key, &kv.value, kv.mod_revision),
            None => Err(RegistryError::NotFound {
                kind,
                namespace: if kind.is_namespaced() {
                    namespace.to_string()
                } else {
                    String::new()
                },
                name: name.to_string(),
            }),
        }
    }

    /// Lists every object of `kind` (in `namespace`, when given) and the store revision of the
    /// read, from which a watch can resume without missing a change.
    ///
    /// # Errors
    /// Store and decoding failures.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Result<(Vec<Object>, u64)> {
        let resp = self.client.range(RangeRequest {
            range: KeyRange::prefix(kind.key_prefix(namespace).into_bytes()),
            ..RangeRequest::default()
        })?;
        let objects = resp
            .kvs
            .iter()
            .map(|kv| decode(&kv.key, &kv.value, kv.mod_revision))
            .collect::<Result<Vec<_>>>()?;
        Ok((objects, resp.revision))
    }

    /// Stores a new object: validated, with a fresh uid, generation 1 and a creation time.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`], [`RegistryError::AlreadyExists`], store failures.
    pub fn create(&self, mut obj: Object) -> Result<Object> {
        obj.apply_defaults();
        validate(&obj)?;
        apply::stamp_new(&mut obj, new_uid());
        let key = obj.store_key();
        let resp = self.client.txn(Txn {
            compares: vec![Compare {
                key: key.clone().into_bytes(),
                op: CompareOp::Equal,
                target: CompareTarget::CreateRevision(0),
            }],
            success: vec![put(&key, &obj)],
            failure: Vec::new(),
        })?;
        if !resp.succeeded {
            return Err(RegistryError::AlreadyExists(obj.display_name()));
        }
        obj.meta_mut().resource_version = resp.revision.to_string();
        Ok(obj)
    }

    /// Writes `obj` over the stored version named by its `resourceVersion`.
    ///
    /// The generation moves when the spec changes. An object marked for deletion whose last
    /// finalizer this update removes is deleted instead.
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when the object changed since it was read (nothing is
    /// written), [`RegistryError::Invalid`], [`RegistryError::NotFound`], store failures.
    pub fn update(&self, mut obj: Object) -> Result<Object> {
        obj.apply_defaults();
        validate(&obj)?;
        let expected: u64 = obj.meta().resource_version.parse().unwrap_or(0);
        let current = self.get(obj.kind(), &obj.meta().namespace, &obj.meta().name)?;
        let current_rev: u64 = current.meta().resource_version.parse().unwrap_or(0);
        if current_rev != expected {
            return Err(RegistryError::Conflict {
                name: obj.display_name(),
                expected,
                current: current_rev,
            });
        }
        {
            // What the control plane owns cannot be changed by a writer.
            let (m, c) = (obj.meta_mut(), current.meta());
            m.uid = c.uid.clone();
            m.creation_timestamp = c.creation_timestamp;
            m.generation = c.generation;
            if c.deletion_timestamp.is_some() {
                m.deletion_timestamp = c.deletion_timestamp;
            }
        }
        if apply::spec_json(&obj) != apply::spec_json(&current) {
            obj.meta_mut().generation += 1;
        }
        let key = obj.store_key();
        let remove = obj.meta().deletion_timestamp.is_some() && obj.meta().finalizers.is_empty();
        let op = if remove {
            delete(&key)
        } else {
            put(&key, &obj)
        };
        let resp = self.client.txn(cas(&key, expected, op))?;
        if !resp.succeeded {
            let now = self
                .get(obj.kind(), &obj.meta().namespace, &obj.meta().name)
                .ok();
            return Err(RegistryError::Conflict {
                name: obj.display_name(),
                expected,
                current: now
                    .and_then(|o| o.meta().resource_version.parse().ok())
                    .unwrap_or(0),
            });
        }
        obj.meta_mut().resource_version = resp.revision.to_string();
        Ok(obj)
    }

    /// Reads, changes with `change`, and writes back, retrying on conflict up to ten times.
    /// `change` returns `false` to leave the object as it is (nothing is written).
    ///
    /// # Errors
    /// As [`Registry::get`] and [`Registry::update`]; a conflict after the last retry.
    pub fn modify(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        mut change: impl FnMut(&mut Object) -> bool,
    ) -> Result<Object> {
        let mut last = None;
        for _ in 0..10 {
            let mut obj = self.get(kind, namespace, name)?;
            if !change(&mut obj) {
                return Ok(obj);
            }
            match self.update(obj) {
                Err(e @ RegistryError::Conflict { .. }) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::NotFound {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }))
    }

    /// Deletes an object, or marks it for deletion when it has finalizers.
    ///
    /// The delete has no precondition: when the object changes between the read and the
    /// write (a node agent writing its status, say), it reads again and retries, up to ten
    /// times.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`], a conflict after the last retry, store failures.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<Deleted> {
        let mut last = None;
        for _ in 0..10 {
            match self.delete_once(kind, namespace, name) {
                Err(e @ RegistryError::Conflict { .. }) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::NotFound {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }))
    }

    fn delete_once(&self, kind: Kind, namespace: &str, name: &str) -> Result<Deleted> {
        let mut obj = self.get(kind, namespace, name)?;
        let rev: u64 = obj.meta().resource_version.parse().unwrap_or(0);
        let key = obj.store_key();
        if obj.meta().finalizers.is_empty() {
            let resp = self.client.txn(cas(&key, rev, delete(&key)))?;
            if !resp.succeeded {
                return Err(RegistryError::Conflict {
                    name: obj.display_name(),
                    expected: rev,
                    current: 0,
                });
            }
            return Ok(Deleted::Removed);
        }
        if obj.meta().deletion_timestamp.is_none() {
            obj.meta_mut().deletion_timestamp = Some(Timestamp::now());
            let resp = self.client.txn(cas(&key, rev, put(&key, &obj)))?;
            if !resp.succeeded {
                return Err(RegistryError::Conflict {
                    name: obj.display_name(),
                    expected: rev,
                    current: 0,
                });
            }
            obj.meta_mut().resource_version = resp.revision.to_string();
        }
        Ok(Deleted::Pending(Box::new(obj)))
    }

    /// Applies manifests: plans each object's outcome and, unless `dry_run`, writes the plan,
    /// each write compared against the revision the plan read.
    ///
    /// # Errors
    /// The first write that fails; objects before it are already applied, and applying again
    /// finishes the job.
    pub fn apply(
        &self,
        desired: &[Object],
        set: &str,
        prune: bool,
        dry_run: bool,
    ) -> Result<Vec<ApplyAction>> {
        for obj in desired {
            validate(obj)?;
        }
        let kinds: std::collections::BTreeSet<Kind> = desired.iter().map(Object::kind).collect();
        let mut stored = Vec::new();
        for kind in kinds {
            let (objects, _) = self.list(kind, None)?;
            stored.extend(objects.into_iter().map(|object| {
                let mod_revision = object.meta().resource_version.parse().unwrap_or(0);
                Stored {
                    object,
                    mod_revision,
                }
            }));
        }
        let mut actions = apply::plan(desired, &stored, set, prune);
        if dry_run {
            return Ok(actions);
        }
        for action in &mut actions {
            match action.outcome {
                ApplyOutcome::Unchanged => {}
                ApplyOutcome::Created => action.object = self.create(action.object.clone())?,
                ApplyOutcome::Configured => {
                    let mut obj = action.object.clone();
                    obj.meta_mut().resource_version = action.expected_revision.to_string();
                    action.object = self.update(obj)?;
                }
                ApplyOutcome::Pruned => {
                    let m = action.object.meta();
                    self.delete(action.object.kind(), &m.namespace.clone(), &m.name.clone())?;
                }
            }
        }
        Ok(actions)
    }

    /// Watches objects of `kind` (in `namespace`, when given), starting after
    /// `resource_version` (0: from now).
    ///
    /// # Errors
    /// Store failures; a compacted start revision is reported by the watch itself.
    pub fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        resource_version: u64,
    ) -> Result<ObjectWatch> {
        ObjectWatch::start(&self.client, kind, namespace, resource_version)
    }
}

/// The transaction operation that writes `obj` as it is (its resourceVersion is not stored).
pub(crate) fn put_op(obj: &Object) -> TxnOp {
    put(&obj.store_key(), obj)
}

/// The compare that holds while `obj` is unchanged since it was read.
pub(crate) fn unchanged(obj: &Object) -> Compare {
    let rev = obj.meta().resource_version.parse().unwrap_or(0);
    Compare::mod_revision_equals(obj.store_key().into_bytes(), rev)
}

/// The store key of an object.
pub fn object_key(kind: Kind, namespace: &str, name: &str) -> String {
    let ns = kind.is_namespaced().then_some(namespace);
    format!("{}{name}", kind.key_prefix(ns))
}

fn validate(obj: &Object) -> Result<()> {
    obj.validate().map_err(|errors| RegistryError::Invalid {
        name: obj.display_name(),
        errors,
    })
}

/// Decodes a stored object and fills in its resourceVersion.
pub(crate) fn decode(key: &[u8], value: &[u8], mod_revision: u64) -> Result<Object> {
    let key_text = String::from_utf8_lossy(key).into_owned();
    let corrupt = |reason: String| RegistryError::Corrupt {
        key: key_text.clone(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    let mut obj = Object::from_json_value(json).map_err(|e| corrupt(e.to_string()))?;
    obj.meta_mut().resource_version = mod_revision.to_string();
    Ok(obj)
}

fn encode(obj: &Object) -> Vec<u8> {
    let mut value = obj.to_json_value();
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("resourceVersion");
    }
    value.to_string().into_bytes()
}

fn put(key: &str, obj: &Object) -> TxnOp {
    TxnOp::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: encode(obj),
        ..PutRequest::default()
    })
}

fn delete(key: &str) -> TxnOp {
    TxnOp::Delete(DeleteRequest {
        range: KeyRange::key(key.as_bytes()),
        prev_kv: false,
    })
}

/// A transaction that applies `op` only if `key` is still at `revision`.
fn cas(key: &str, revision: u64, op: TxnOp) -> Txn {
    Txn {
        compares: vec![Compare::mod_revision_equals(key.as_bytes(), revision)],
        success: vec![op],
        failure: Vec::new(),
    }
}

/// A random version-4 UUID, as Kubernetes gives every object.
fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}
