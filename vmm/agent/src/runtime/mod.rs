//! The agent itself: PID 1 duties, the request server and the container runtime.
//!
//! The binary runs in one of three roles, chosen by its first argument:
//! - no argument, or `serve-fd <fd>`: the agent, PID 1 of the sandbox ([`pid1`], [`server`]);
//! - `container-init`: PID 1 of one container's pid namespace, started by the agent ([`init`]);
//! - `exec-in`: enters a running container to run one more process ([`init`]).
//!
//! The last two are this same binary started again with `/proc/self/exe`, so that the code
//! running between clone and exec stays async-signal-safe and the agent can be multithreaded.

pub mod container;
pub mod init;
pub mod pid1;
pub mod reaper;
pub mod server;
pub mod sys;
pub mod user;

use serde::{Deserialize, Serialize};

use crate::protocol::ProcessSpec;

/// Descriptor on which a child role reads its configuration.
pub const CONFIG_FD: i32 = 3;
/// Descriptor on which a child role writes its [`Report`]s.
pub const REPORT_FD: i32 = 4;
/// Descriptor on which `container-init` waits for the start byte.
pub const START_FD: i32 = 5;

/// What `container-init` is told.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    /// Root directory of the container, as the agent sees it.
    pub rootfs: String,
    /// Host name to set.
    pub hostname: String,
    /// `cgroup.procs` files to join before anything else.
    pub cgroup_procs: Vec<String>,
    /// The container's process.
    pub process: ProcessSpec,
}

/// What `exec-in` is told.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container's init, whose namespaces to enter (pid in the agent's namespace).
    pub init_pid: i32,
    /// `cgroup.procs` files to join.
    pub cgroup_procs: Vec<String>,
    /// The process to run.
    pub process: ProcessSpec,
}

/// What a child role tells the agent.
#[derive(Debug, Serialize, Deserialize)]
pub enum Report {
    /// The container is set up and waits for its start byte.
    Ready,
    /// The process was started; its pid as the reporter sees it.
    Started(i32),
    /// Setting up failed.
    Failed(String),
    /// The container's process ended with this raw wait status.
    MainExited(i32),
}

/// Runs the role named by the command line; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    match args.get(1).map(String::as_str) {
        Some("container-init") => init::container_init(),
        Some("exec-in") => init::exec_in(),
        Some("serve-fd") => {
            let fd = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(CONFIG_FD);
            pid1::serve_namespace_sandbox(fd)
        }
        None => pid1::serve_micro_vm(),
        Some(other) => {
            eprintln!("podvisor-agent: unknown role {other:?}");
            2
        }
    }
}
