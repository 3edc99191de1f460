//! podvisor's control plane.
//!
//! Declarative objects (Node, Pod, VirtualMachine, IPPool, Service) stored in the replicated
//! store, the controllers that act on them, and the node agent that runs pods on a host.
