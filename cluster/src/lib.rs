//! podvisor's control plane.
//!
//! Declarative objects (Node, Pod, VirtualMachine, IPPool, Service) stored in the replicated
//! store, the controllers that act on them, and the node agent that runs pods on a host.
//!
//! [`objects`] holds the object model: the kinds, their validation, and how manifests are read
//! from YAML or JSON. [`apply`] plans an idempotent apply of manifests over the stored state, and
//! [`scheduler`] decides where a pod runs.

pub mod apply;
pub mod controllers;
pub mod ipam;
pub mod node;
pub mod objects;
pub mod registry;
pub mod scheduler;
