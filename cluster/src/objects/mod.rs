//! The object model of the control plane.
//!
//! Every object has the Kubernetes shape operators already know: `apiVersion`, `kind`,
//! `metadata`, a `spec` saying what is wanted and a `status` saying what is. The kinds are
//! [`Node`], [`Pod`], [`VirtualMachine`], [`IpPool`] and [`Service`]; [`Object`] holds any one
//! of them. Manifests are read from YAML or JSON with [`parse_manifests`], and every object is
//! checked by [`Object::validate`] before it may be stored: an error names the field path and the
//! reason.

mod ippool;
mod manifest;
mod meta;
mod node;
mod object;
mod pod;
mod quantity;
mod service;
mod validation;
mod vm;

pub use ippool::{IpPool, IpPoolSpec, IpPoolStatus, IpRange, PoolPurpose};
pub use manifest::{ManifestError, parse_manifests, read_manifest_path};
pub use meta::{
    Condition, ConditionStatus, DEFAULT_NAMESPACE, LabelSelector, ObjectMeta, OwnerReference,
    Timestamp,
};
pub use node::{Node, NodeSpec, NodeStatus, Taint, TaintEffect};
pub use object::{Kind, Object};
pub use pod::{
    Container, ContainerState, ContainerStatus, EnvVar, Pod, PodAffinity, PodAntiAffinityTerm,
    PodPhase, PodSpec, PodStatus, ResourceRequirements, RestartPolicy, RuntimeClass, Toleration,
    TolerationOperator, TopologySpreadConstraint,
};
pub use quantity::{parse_cpu_millis, parse_memory_bytes};
pub use service::{Service, ServicePort, ServiceSpec, ServiceStatus};
pub use validation::{FieldPath, ValidationError, ValidationErrors};
pub use vm::{
    PowerState, VirtualMachine, VirtualMachineClass, VirtualMachineImage, VirtualMachineNetwork,
    VirtualMachineSpec, VirtualMachineStatus,
};
