//! The Node: a host whose node agent runs pods and VMs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::{Condition, ObjectMeta, Timestamp};
use super::pod::RuntimeClass;
use super::validation::{FieldPath, ValidationErrors};

/// A host registered by its node agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    /// Name and labels; nodes are cluster-scoped.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the operator wants of the node.
    #[serde(default)]
    pub spec: NodeSpec,
    /// What the node agent reports.
    #[serde(default)]
    pub status: NodeStatus,
}

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaintEffect {
    /// New pods are not scheduled here.
    NoSchedule,
    /// New pods avoid the node when they can.
    PreferNoSchedule,
    /// Running pods are evicted too.
    NoExecute,
}

/// Keeps pods that do not tolerate it off a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    /// The taint's key.
    pub key: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
    /// What it does.
    pub effect: TaintEffect,
}

/// What the operator wants of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// Taints on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// When set, no new pod is scheduled here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unschedulable: bool,
}

/// What the node agent reports about its host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeStatus {
    /// Total `cpu`, `memory` and `pods` of the host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, String>,
    /// What pods may use: `cpu`, `memory` and `pods`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, String>,
    /// The sandbox isolation levels this host can provide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_classes: Vec<RuntimeClass>,
    /// Conditions such as `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the host's KVM is: `hardware-assisted`, `software-paged` or `absent`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kvm: String,
    /// The address the node agent serves logs and exec on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_address: String,
    /// When the node agent last renewed its lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Timestamp>,
}

impl Node {
    pub(super) fn validate(&self, errs: &mut ValidationErrors) {
        self.metadata.validate(false, errs);
        for (i, t) in self.spec.taints.iter().enumerate() {
            if t.key.is_empty() {
                errs.push(
                    FieldPath::root("spec")
                        .child("taints")
                        .index(i)
                        .child("key"),
                    "must not be empty",
                );
            }
        }
    }

    /// Whether the node's `Ready` condition holds.
    pub fn is_ready(&self) -> bool {
        Condition::find(&self.status.conditions, "Ready")
            .is_some_and(|c| c.status == super::meta::ConditionStatus::True)
    }
}
