//! The Pod: one or more containers that share a sandbox on one node.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::meta::{Condition, LabelSelector, ObjectMeta, Timestamp};
use super::node::TaintEffect;
use super::quantity::{parse_cpu_millis, parse_memory_bytes};
use super::validation::{FieldPath, ValidationErrors};

/// A pod, as stored and as written in manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pod {
    /// Name, namespace, labels and versions.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the operator wants.
    pub spec: PodSpec,
    /// What the node agent last reported.
    #[serde(default)]
    pub status: PodStatus,
}

/// The isolation level of a pod's sandbox, like Kubernetes' RuntimeClass.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeClass {
    /// A micro-VM of podvisor's own VMM: the strong level.
    #[serde(alias = "microVM", alias = "micro-vm")]
    #[default]
    Microvm,
    /// Linux namespaces and cgroups on the host.
    Namespaces,
}

impl RuntimeClass {
    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeClass::Microvm => "microvm",
            RuntimeClass::Namespaces => "namespaces",
        }
    }
}

/// When a container that ended is started again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Always, whatever the exit code.
    #[default]
    Always,
    /// Only after a non-zero exit.
    OnFailure,
    /// Never; the pod ends Succeeded or Failed.
    Never,
}

/// What the operator wants of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    /// The containers, started in order.
    pub containers: Vec<Container>,
    /// The sandbox's isolation level; the cluster's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<RuntimeClass>,
    /// When ended containers are started again.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Labels a node must carry to run this pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints this pod tolerates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Pods this one must not share a topology domain with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<PodAffinity>,
    /// How evenly matching pods must spread over topology domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Seconds a container gets between SIGTERM and SIGKILL when the pod is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
    /// The node the pod is bound to; set by the scheduler.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// The pod's hostname; its name when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
}

/// One container of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// Unique within the pod.
    pub name: String,
    /// An absolute path on the node to an OCI image layout or a plain root filesystem
    /// directory, or a name the node resolves in its image cache (`busybox`).
    pub image: String,
    /// The entry point; the image's when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entry point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// The working directory; the image's when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// CPU and memory.
    #[serde(default)]
    pub resources: ResourceRequirements,
}

/// One environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// CPU and memory a container asks for (`requests`, used to schedule) and may not exceed
/// (`limits`, enforced with cgroups).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequirements {
    /// `cpu` and `memory` quantities the scheduler reserves.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    /// `cpu` and `memory` quantities enforced at run time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

impl ResourceRequirements {
    /// CPU requested, in millicores; the limit when no request is given, as Kubernetes does.
    pub fn cpu_request_millis(&self) -> u64 {
        let text = self.requests.get("cpu").or_else(|| self.limits.get("cpu"));
        text.and_then(|t| parse_cpu_millis(t).ok()).unwrap_or(0)
    }

    /// Memory requested, in bytes; the limit when no request is given.
    pub fn memory_request_bytes(&self) -> u64 {
        let text = self
            .requests
            .get("memory")
            .or_else(|| self.limits.get("memory"));
        text.and_then(|t| parse_memory_bytes(t).ok()).unwrap_or(0)
    }

    /// The memory limit in bytes, if one is set.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        self.limits
            .get("memory")
            .and_then(|t| parse_memory_bytes(t).ok())
    }

    /// The CPU limit in millicores, if one is set.
    pub fn cpu_limit_millis(&self) -> Option<u64> {
        self.limits
            .get("cpu")
            .and_then(|t| parse_cpu_millis(t).ok())
    }

    fn validate(&self, path: &FieldPath, errs: &mut ValidationErrors) {
        for (field, map) in [("requests", &self.requests), ("limits", &self.limits)] {
            for (name, text) in map {
                let at = path.child(field).key(name);
                let parsed = match name.as_str() {
                    "cpu" => parse_cpu_millis(text).map(|_| ()),
                    "memory" => parse_memory_bytes(text).map(|_| ()),
                    other => Err(format!("unknown resource {other:?} (known: cpu, memory)")),
                };
                if let Err(reason) = parsed {
                    errs.push(at, reason);
                }
            }
        }
        for name in ["cpu", "memory"] {
            let (Some(req), Some(lim)) = (self.requests.get(name), self.limits.get(name)) else {
                continue;
            };
            let parse = if name == "cpu" {
                parse_cpu_millis
            } else {
                parse_memory_bytes
            };
            if let (Ok(req), Ok(lim)) = (parse(req), parse(lim))
                && req > lim
            {
                errs.push(
                    path.child("requests").key(name),
                    "must not exceed the limit",
                );
            }
        }
    }
}

/// How a toleration matches a taint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TolerationOperator {
    /// The taint's value must equal the toleration's.
    #[default]
    Equal,
    /// Any value of the key.
    Exists,
}

/// Lets a pod run on a node with a matching taint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// The taint key; empty with `Exists` tolerates every taint.
    #[serde(default)]
    pub key: String,
    /// How the value is compared.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// The value compared with `Equal`.
    #[serde(default)]
    pub value: String,
    /// The effect tolerated; every effect when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

/// Scheduling constraints relative to other pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodAffinity {
    /// Pods this one must not share a topology domain with.
    #[serde(default)]
    pub pod_anti_affinity: Vec<PodAntiAffinityTerm>,
}

/// No pod matching `labelSelector` may run in the same `topologyKey` domain as this pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodAntiAffinityTerm {
    /// The pods to keep away from.
    pub label_selector: LabelSelector,
    /// The node label that names a domain; `kubernetes.io/hostname` means one node.
    #[serde(default = "hostname_topology")]
    pub topology_key: String,
}

fn hostname_topology() -> String {
    "kubernetes.io/hostname".to_string()
}

/// Matching pods may differ in count by at most `maxSkew` between topology domains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopologySpreadConstraint {
    /// The largest allowed difference between domains.
    pub max_skew: u32,
    /// The node label that names a domain.
    #[serde(default = "hostname_topology")]
    pub topology_key: String,
    /// The pods counted.
    pub label_selector: LabelSelector,
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    /// Accepted, not yet running: unscheduled, or its sandbox is being made.
    #[default]
    Pending,
    /// Bound to a node, with at least one container running.
    Running,
    /// Every container ended with exit code 0 and will not restart.
    Succeeded,
    /// Every container ended and at least one failed, or the pod was lost.
    Failed,
    /// The node agent cannot be reached.
    Unknown,
}

impl PodPhase {
    /// Whether the pod has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// What the node agent last reported about a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodStatus {
    /// Where the pod is in its life.
    #[serde(default)]
    pub phase: PodPhase,
    /// Conditions such as `PodScheduled` and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// A CamelCase word for the phase, such as `NodeLost`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The pod's address.
    #[serde(default, rename = "podIP", skip_serializing_if = "String::is_empty")]
    pub pod_ip: String,
    /// The IP pool the address came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_pool: String,
    /// When the node agent started the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// One entry per container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
}

/// What the node agent last reported about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// Its state now.
    #[serde(default)]
    pub state: ContainerState,
    /// How often it was started again.
    #[serde(default)]
    pub restart_count: u32,
}

/// A container's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ContainerState {
    /// Not started yet.
    Waiting {
        /// Why, such as `ContainerCreating`.
        #[serde(default)]
        reason: String,
    },
    /// Running since `startedAt`.
    #[serde(rename_all = "camelCase")]
    Running {
        /// When it started.
        started_at: Timestamp,
    },
    /// Ended.
    #[serde(rename_all = "camelCase")]
    Terminated {
        /// Its exit code; 128 + the signal when a signal ended it.
        exit_code: i32,
        /// The signal that ended it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        /// `Completed`, `Error`, `OOMKilled` or `SandboxDied`.
        reason: String,
        /// When it started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
        /// When it ended.
        finished_at: Timestamp,
    },
    /// No state reported yet.
    #[default]
    Unknown,
}

impl Pod {
    pub(super) fn validate(&self, errs: &mut ValidationErrors) {
        self.metadata.validate(true, errs);
        let spec = FieldPath::root("spec");
        if self.spec.containers.is_empty() {
            errs.push(
                spec.child("containers"),
                "a pod needs at least one container",
            );
        }
        let mut names = BTreeSet::new();
        for (i, c) in self.spec.containers.iter().enumerate() {
            let at = spec.child("containers").index(i);
            errs.check_dns_label(at.child("name"), &c.name);
            if !names.insert(c.name.as_str()) {
                errs.push(
                    at.child("name"),
                    format!("duplicate container name {:?}", c.name),
                );
            }
            if c.image.trim().is_empty() {
                errs.push(at.child("image"), "must name an image");
            } else if c.image.split('/').any(|part| part == "..") {
                errs.push(at.child("image"), "must not contain '..'");
            }
            for (j, e) in c.env.iter().enumerate() {
                if e.name.is_empty() || e.name.contains('=') || e.name.contains('\0') {
                    errs.push(
                        at.child("env").index(j).child("name"),
                        "must be non-empty, without '=' or NUL",
                    );
                }
            }
            if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
                errs.push(at.child("workingDir"), "must be an absolute path");
            }
            c.resources.validate(&at.child("resources"), errs);
        }
        for (i, t) in self.spec.tolerations.iter().enumerate() {
            if t.operator == TolerationOperator::Exists && !t.value.is_empty() {
                errs.push(
                    spec.child("tolerations").index(i).child("value"),
                    "must be empty when operator is Exists",
                );
            }
        }
        for (i, c) in self.spec.topology_spread_constraints.iter().enumerate() {
            if c.max_skew == 0 {
                errs.push(
                    spec.child("topologySpreadConstraints")
                        .index(i)
                        .child("maxSkew"),
                    "must be at least 1",
                );
            }
        }
        if !self.spec.hostname.is_empty() {
            errs.check_dns_label(spec.child("hostname"), &self.spec.hostname);
        }
    }

    /// CPU the scheduler reserves for this pod, in millicores.
    pub fn cpu_request_millis(&self) -> u64 {
        self.spec
            .containers
            .iter()
            .map(|c| c.resources.cpu_request_millis())
            .sum()
    }

    /// Memory the scheduler reserves for this pod, in bytes.
    pub fn memory_request_bytes(&self) -> u64 {
        self.spec
            .containers
            .iter()
            .map(|c| c.resources.memory_request_bytes())
            .sum()
    }
}
