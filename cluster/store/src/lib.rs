//! podvisor's replicated state store.
//!
//! Three masters keep one MVCC key-value state machine in agreement with Raft. Every object of
//! the control plane lives here, and every node agent watches it.
