//! The Service: a stable virtual address (VIP) in front of the pods its selector matches.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::meta::{Condition, ObjectMeta};
use super::validation::{FieldPath, ValidationErrors};

/// A service with a VIP from a load-balancer pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// Name, namespace and labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Which pods, which ports, which pool.
    pub spec: ServiceSpec,
    /// The VIP given.
    #[serde(default)]
    pub status: ServiceStatus,
}

/// One port a service exposes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// A name, required when there are several ports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `TCP` or `UDP`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// The port on the VIP.
    pub port: u16,
    /// The port on the pods; `port` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
}

fn tcp() -> String {
    "TCP".to_string()
}

/// What the operator wants of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// Labels of the pods behind the service.
    pub selector: BTreeMap<String, String>,
    /// The ports exposed.
    pub ports: Vec<ServicePort>,
    /// The load-balancer pool the VIP comes from; any such pool when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_pool: String,
}

/// The VIP given to a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceStatus {
    /// The virtual address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vip: String,
    /// The pool it came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_pool: String,
    /// Conditions such as `VIPAllocated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Service {
    pub(super) fn validate(&self, errs: &mut ValidationErrors) {
        self.metadata.validate(true, errs);
        let spec = FieldPath::root("spec");
        if self.spec.selector.is_empty() {
            errs.push(spec.child("selector"), "a service needs a selector");
        }
        if self.spec.ports.is_empty() {
            errs.push(spec.child("ports"), "a service needs at least one port");
        }
        let mut names = BTreeSet::new();
        for (i, p) in self.spec.ports.iter().enumerate() {
            let at = spec.child("ports").index(i);
            if p.port == 0 {
                errs.push(at.child("port"), "must be between 1 and 65535");
            }
            if p.target_port == Some(0) {
                errs.push(at.child("targetPort"), "must be between 1 and 65535");
            }
            if p.protocol != "TCP" && p.protocol != "UDP" {
                errs.push(
                    at.child("protocol"),
                    format!("{:?} is neither TCP nor UDP", p.protocol),
                );
            }
            if self.spec.ports.len() > 1 && p.name.is_empty() {
                errs.push(
                    at.child("name"),
                    "must be set when a service has several ports",
                );
            }
            if !p.name.is_empty() && !names.insert(p.name.as_str()) {
                errs.push(
                    at.child("name"),
                    format!("duplicate port name {:?}", p.name),
                );
            }
        }
    }
}
