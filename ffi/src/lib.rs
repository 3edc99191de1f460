//! libpodvisor: the C ABI over podvisor's Rust APIs.
//!
//! It holds no logic of its own. Each entry point checks its arguments, calls the Rust API of
//! the crate it wraps, and turns the result into a [`podvisor_error_code`] plus the thread's last
//! error. `include/podvisor.h` is generated from this crate with cbindgen and committed; the
//! tests fail if regenerating it would change it, or if a symbol of `abi/symbols.txt` is gone.
//!
//! - [`version`]: release and ABI versions;
//! - [`error`]: the error codes and the last error;
//! - [`boundary`]: the panic barrier and the argument checks every entry point goes through;
//! - `handle`: opaque handles and the registry of live ones;
//! - `options`: options structs that start with their size;
//! - `altstack`: the library threads that call host callbacks;
//! - [`log`]: the log callback;
//! - [`vm`]: the VMM, booting a kernel directly;
//! - [`store`]: an embedded master and a client of the replicated store;
//! - [`objects`]: the control plane's objects, applied from manifests and read as JSON, and
//!   pod logs;
//! - [`controllers`]: the scheduler and the other controllers, started in-process;
//! - [`node`]: the node agent, started and stopped in-process;
//! - [`sandbox`]: sandboxes at either isolation level, their containers and processes.
//!
//! Every `unsafe extern "C"` function here shares one safety contract, stated once instead of in
//! each: every pointer argument is NULL or valid for the access the header documents, and every
//! handle is NULL or a value libpodvisor returned (a freed or mistyped one is detected).
#![allow(clippy::missing_safety_doc)]
// The C ABI's types are spelled as the header spells them.
#![allow(non_camel_case_types)]

mod altstack;
pub mod boundary;
pub mod controllers;
pub mod error;
mod handle;
pub mod log;
pub mod node;
pub mod objects;
mod options;
pub mod sandbox;
pub mod store;
pub mod version;
pub mod vm;

pub use boundary::*;
pub use controllers::*;
pub use error::*;
pub use log::*;
pub use node::*;
pub use objects::*;
pub use sandbox::config::*;
pub use sandbox::process::*;
pub use sandbox::*;
pub use store::client::*;
pub use store::master::*;
pub use store::txn::*;
pub use store::watch::*;
pub use version::*;
pub use vm::*;
