//! podvisor's replicated state store.
//!
//! Three masters keep one MVCC key-value state machine in agreement with Raft. Every object of
//! the control plane lives here, and every node agent watches it.
//!
//! - [`api`]: the key-value model (pairs, ranges, transactions, watch events, leases).
//! - [`Client`]: the blocking client that finds the leader, follows redirects and retries
//!   without applying a write twice.
//! - [`Master`]: one master, run in-process or by the `podvisor-master` binary.
//!
//! Inside: [`mvcc`] and [`state_machine`] are the deterministic state; [`log_store`] keeps the
//! raft log and snapshots durable; `node` runs raft's ready loop; `transport` carries raft
//! messages between masters over TCP; `server` answers clients.

pub mod api;
mod client;
mod error;
pub mod log_store;
mod master;
pub mod mvcc;
mod node;
mod server;
pub mod state_machine;
mod transport;
pub mod wire;

pub use client::{Client, ClientConfig, Watcher, member_status};
pub use error::{Result, StoreError};
pub use master::{Master, MasterConfig};
