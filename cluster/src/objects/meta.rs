//! Metadata shared by every kind: names, labels, versions, finalizers, owners and conditions.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::validation::{FieldPath, ValidationErrors};

/// The namespace an object of a namespaced kind lands in when its manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A point in time, written as RFC 3339 in UTC with second precision, as Kubernetes does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(SystemTime::now())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is no RFC 3339 time: {e}")))
    }
}

/// Names an object that owns this one; an owned object is cleaned up or recreated with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerReference {
    /// The owner's apiVersion.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's uid.
    pub uid: String,
    /// Whether the owner is the managing controller.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller: bool,
}

/// The metadata every object carries.
///
/// `name`, `namespace`, `labels`, `annotations`, `finalizers` and `ownerReferences` are the
/// user's; `uid`, `resourceVersion`, `generation` and the timestamps are set by the control plane
/// when it stores the object, and ignored when they come from a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The object's name, unique per kind and namespace.
    #[serde(default)]
    pub name: String,
    /// The namespace of a namespaced kind; empty for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// A unique id given when the object is created; never reused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Labels for selection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form notes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The store revision at which the object was last written, as a decimal string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// A counter bumped each time the spec changes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
    /// Names of controllers that must finish before the object is really deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// The objects this one belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
    /// When the object was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    /// When deletion was asked for; the object stays until its finalizers are cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<Timestamp>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ObjectMeta {
    /// Metadata with just a name.
    pub fn named(name: &str) -> Self {
        ObjectMeta {
            name: name.to_string(),
            ..ObjectMeta::default()
        }
    }

    pub(super) fn validate(&self, namespaced: bool, errs: &mut ValidationErrors) {
        let path = FieldPath::root("metadata");
        errs.check_dns_subdomain(path.child("name"), &self.name);
        if namespaced {
            if !self.namespace.is_empty() {
                errs.check_dns_label(path.child("namespace"), &self.namespace);
            }
        } else if !self.namespace.is_empty() {
            errs.push(
                path.child("namespace"),
                "this kind is cluster-scoped and takes no namespace",
            );
        }
        for (key, value) in &self.labels {
            let at = path.child("labels").key(key);
            if let Err(reason) = check_label_key(key) {
                errs.push(at.clone(), reason);
            }
            if let Err(reason) = check_label_value(value) {
                errs.push(at, reason);
            }
        }
        for (i, f) in self.finalizers.iter().enumerate() {
            if f.is_empty() {
                errs.push(path.child("finalizers").index(i), "must not be empty");
            }
        }
        for (i, owner) in self.owner_references.iter().enumerate() {
            let at = path.child("ownerReferences").index(i);
            if owner.kind.is_empty() {
                errs.push(at.child("kind"), "must not be empty");
            }
            if owner.name.is_empty() {
                errs.push(at.child("name"), "must not be empty");
            }
        }
    }
}

fn check_label_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let mut errs = ValidationErrors::default();
            errs.check_dns_subdomain(FieldPath::default(), prefix);
            if !errs.0.is_empty() {
                return Err(format!("label key prefix {prefix:?} is no DNS subdomain"));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || name.len() > 63 {
        return Err(format!(
            "label key {key:?} must have a name of 1 to 63 characters"
        ));
    }
    check_label_value(name).map_err(|_| format!("label key {key:?} has characters not allowed"))
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!(
            "label value {value:?} is longer than 63 characters"
        ));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let edge_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !value.chars().all(ok) || !edge_ok(value.chars().next()) || !edge_ok(value.chars().last()) {
        return Err(format!(
            "label value {value:?} may hold only alphanumerics, '-', '_' and '.', and must start and end with an alphanumeric"
        ));
    }
    Ok(())
}

/// Selects objects by their labels: every pair in `matchLabels` must be present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels an object must carry, each with this value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy this selector. An empty selector matches everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Whether a condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Nobody knows yet.
    Unknown,
}

/// One observation about an object, as in Kubernetes' `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// What is observed, such as `Ready` or `Scheduled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// A CamelCase word saying why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The object's generation this observation is about.
    #[serde(default)]
    pub observed_generation: u64,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
}

impl Condition {
    /// Sets the condition `cond.type_` in `conditions`, keeping its transition time when the
    /// status did not change.
    pub fn set(conditions: &mut Vec<Condition>, mut cond: Condition) {
        match conditions.iter_mut().find(|c| c.type_ == cond.type_) {
            Some(old) => {
                if old.status == cond.status {
                    cond.last_transition_time = old.last_transition_time;
                } else if cond.last_transition_time.is_none() {
                    cond.last_transition_time = Some(Timestamp::now());
                }
                *old = cond;
            }
            None => {
                if cond.last_transition_time.is_none() {
                    cond.last_transition_time = Some(Timestamp::now());
                }
                conditions.push(cond);
            }
        }
    }

    /// The condition of this type, if any.
    pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
        conditions.iter().find(|c| c.type_ == type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_timestamp_round_trips_as_rfc3339() {
        let t: Timestamp = serde_json::from_str("\"2026-12-03T16:00:00Z\"").expect("parses");
        assert_eq!(
            serde_json::to_string(&t).expect("writes"),
            "\"2026-12-03T16:00:00Z\""
        );
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn test_metadata_fails_when_cluster_scoped_kind_has_namespace() {
        let mut meta = ObjectMeta::named("n1");
        meta.namespace = "default".into();
        let mut errs = ValidationErrors::default();
        meta.validate(false, &mut errs);
        assert_eq!(errs.0.len(), 1);
        assert_eq!(errs.0[0].path.as_str(), "metadata.namespace");
    }

    #[test]
    fn test_labels_are_checked_key_and_value() {
        let mut meta = ObjectMeta::named("p");
        meta.labels.insert("app".into(), "web".into());
        meta.labels
            .insert("podvisor.io/tier".into(), "front_1".into());
        meta.labels.insert("bad key".into(), "x".into());
        meta.labels.insert("ok".into(), "-bad".into());
        let mut errs = ValidationErrors::default();
        meta.validate(true, &mut errs);
        let paths: Vec<_> = errs.0.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(paths, ["metadata.labels[bad key]", "metadata.labels[ok]"]);
    }

    #[test]
    fn test_condition_set_keeps_transition_time_when_status_unchanged() {
        let mut conds = Vec::new();
        let first = Condition {
            type_: "Ready".into(),
            status: ConditionStatus::True,
            reason: "Up".into(),
            message: String::new(),
            observed_generation: 1,
            last_transition_time: Some(Timestamp(SystemTime::UNIX_EPOCH)),
        };
        Condition::set(&mut conds, first.clone());
        Condition::set(
            &mut conds,
            Condition {
                observed_generation: 2,
                last_transition_time: None,
                ..first
            },
        );
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].observed_generation, 2);
        assert_eq!(
            conds[0].last_transition_time,
            Some(Timestamp(SystemTime::UNIX_EPOCH))
        );
    }
}
