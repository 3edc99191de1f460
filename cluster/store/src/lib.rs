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
//!
//! A one-master cluster, in-process, and a client of it:
//!
//! ```
//! use podvisor_store::api::Member;
//! use podvisor_store::{Client, Master, MasterConfig};
//!
//! # fn main() -> podvisor_store::Result<()> {
//! let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
//! let me = Member {
//!     id: 1,
//!     peer_addr: port().to_string(),
//!     client_addr: port().to_string(),
//!     learner: false,
//! };
//! let dir = tempfile::tempdir().unwrap();
//! let master = Master::start(MasterConfig::new(1, 7, dir.path(), vec![me.clone()]))?;
//!
//! let client = Client::connect(&[me.client_addr.as_str()])?;
//! let put = client.put("pods/web", "running")?;
//! let kv = client.get("pods/web")?.expect("just written");
//! assert_eq!(kv.value, b"running");
//! assert_eq!(kv.mod_revision, put.revision);
//! master.stop();
//! # Ok(())
//! # }
//! ```

pub mod api;
mod client;
mod conns;
mod error;
pub mod log_store;
mod master;
pub mod mvcc;
mod node;
mod reply;
mod server;
pub mod state_machine;
mod transport;
pub mod wire;

pub use client::{Client, ClientConfig, Watcher, member_status};
pub use error::{Result, StoreError};
pub use master::{Master, MasterConfig};
pub use server::MAX_LEASE_TTL_SECS;
