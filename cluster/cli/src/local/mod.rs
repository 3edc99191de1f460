//! `podvisor cluster up|down|status`: a whole cluster on this machine.
//!
//! `up` starts three masters and two node agents as processes of their own (each in a new
//! session, so they outlive the command), on loopback ports, with every file under one
//! directory (`--home`, `PODVISOR_HOME`, default `/tmp/podvisor-demo`):
//!
//! ```text
//! config                 endpoints and the pod bridge; other verbs read the endpoints here
//! masters/master-N/      each master's raft log and snapshots
//! nodes/node-N/          each node agent's sandboxes and VM consoles
//! logs/NAME.log          each process's stderr
//! pids/NAME.pid          each process's id
//! ```
//!
//! The node agents share one host bridge, made by `up` with the gateway address of the
//! workload pool, so the host reaches every pod by its IP. `down` stops the processes (node
//! agents first, so that they stop their pods), removes what is left of their sandboxes
//! (cgroups, mounts, veths), the bridge and the directory, and checks that nothing remains.

mod down;
mod status;
mod up;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

pub use down::down;
pub use status::status;
pub use up::up;

/// `podvisor cluster`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  sudo podvisor cluster up\n  podvisor cluster status\n  \
    sudo podvisor cluster down"
)]
pub struct ClusterArgs {
    /// Where the local cluster keeps its files.
    #[arg(long, global = true, env = "PODVISOR_HOME", default_value = crate::context::DEFAULT_HOME)]
    pub home: PathBuf,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start three masters and two node agents on this machine and wait until they are ready.
    #[command(
        after_help = "Example:\n  sudo PODVISOR_AGENT=$(vmm/agent/build-static) podvisor cluster up"
    )]
    Up(up::UpArgs),
    /// Stop the local cluster and remove everything it made.
    #[command(after_help = "Example:\n  sudo podvisor cluster down")]
    Down(down::DownArgs),
    /// Show the masters, the leader and the nodes of the local cluster.
    #[command(after_help = "Example:\n  podvisor cluster status")]
    Status(status::StatusArgs),
}

/// The files of a local cluster.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The top directory.
    pub home: PathBuf,
}

impl Layout {
    /// The layout under `home`.
    pub fn new(home: &Path) -> Self {
        Layout {
            home: home.to_path_buf(),
        }
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.home.join("config")
    }

    /// A process's pid file.
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.home.join("pids").join(format!("{name}.pid"))
    }

    /// A process's log.
    pub fn log(&self, name: &str) -> PathBuf {
        self.home.join("logs").join(format!("{name}.log"))
    }

    /// A node agent's state directory.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.home.join("nodes").join(name)
    }

    /// A master's data directory.
    pub fn master_dir(&self, name: &str) -> PathBuf {
        self.home.join("masters").join(name)
    }

    /// Every process with a pid file: (name, pid).
    pub fn processes(&self) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.home.join("pids")) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".pid")
                .to_string();
            if let Some(pid) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                out.push((name, pid));
            }
        }
        out.sort();
        out
    }

    /// The config file's `key = value` entry.
    pub fn setting(&self, key: &str) -> Option<String> {
        crate::context::read_config(&self.config())?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill has no memory effects; a stale pid at worst fails with ESRCH.
    unsafe { libc::kill(pid, signal) };
}

/// The last line of a log file, for error messages.
pub fn last_log_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(String::from)
        })
        .unwrap_or_default()
}

/// Runs a command, returning its stdout; failures are reported with its stderr.
pub fn command(program: &str, args: &[&str]) -> std::result::Result<String, String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
