//! `podvisor cluster down`: stop every process of the local cluster and remove what they made.
//!
//! Node agents go first, with SIGTERM, so that they stop their pods with their grace periods
//! and release their leases; then the masters. Whatever a process could not clean up, because
//! it was killed, is removed here: the cgroups and mounts of its sandboxes, the veths on the
//! bridge, the bridge, and the directory. Only what this cluster made is touched: sandboxes
//! are found by the names in its node directories, veths by the bridge they hang on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use super::{Layout, alive, command, signal};
use crate::error::{CliError, Result};
use crate::progress::{Progress, step};

/// `podvisor cluster down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Keep the directory (logs, raft data) after stopping.
    #[arg(long)]
    pub keep_files: bool,
}

/// What is left of a local cluster.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Live processes: (name, pid).
    pub processes: Vec<(String, i32)>,
    /// Mount points under the home directory.
    pub mounts: Vec<String>,
    /// Network interfaces: the bridge and veths on it.
    pub interfaces: Vec<String>,
    /// Cgroup directories of its sandboxes.
    pub cgroups: Vec<PathBuf>,
}

impl Leftovers {
    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.mounts.is_empty()
            && self.interfaces.is_empty()
            && self.cgroups.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.processes.is_empty() {
            let p: Vec<String> = self
                .processes
                .iter()
                .map(|(n, p)| format!("{n} ({p})"))
                .collect();
            parts.push(format!("processes {}", p.join(", ")));
        }
        if !self.mounts.is_empty() {
            parts.push(format!("mounts {}", self.mounts.join(", ")));
        }
        if !self.interfaces.is_empty() {
            parts.push(format!("interfaces {}", self.interfaces.join(", ")));
        }
        if !self.cgroups.is_empty() {
            let c: Vec<String> = self
                .cgroups
                .iter()
                .map(|c| c.display().to_string())
                .collect();
            parts.push(format!("cgroups {}", c.join(", ")));
        }
        parts.join("; ")
    }
}

/// Stops the local cluster, cleans up, and checks that nothing is left.
///
/// # Errors
/// Something could not be removed; the message lists it.
pub fn down(layout: &Layout, args: &DownArgs) -> Result<()> {
    if !layout.home.exists() {
        println!("no local cluster under {}", layout.home.display());
        return Ok(());
    }
    let bridge = layout.setting("bridge");
    let sandboxes = sandbox_ids(layout);
    let procs = layout.processes();
    let (agents, masters): (Vec<_>, Vec<_>) = procs
        .iter()
        .cloned()
        .partition(|(name, _)| name.starts_with("node-"));

    step("stopping the node agents (they stop their pods)");
    stop(&agents, Duration::from_secs(30));
    step("stopping the masters");
    stop(&masters, Duration::from_secs(10));

    step("removing sandboxes, mounts, interfaces and files");
    let cgroups = sandbox_cgroups(&sandboxes);
    for cg in &cgroups {
        remove_cgroup(cg);
    }
    for m in mounts_under(&layout.home).iter().rev() {
        unmount(m);
    }
    if let Some(br) = &bridge {
        for link in links_on(br) {
            let _ = command("ip", &["link", "del", &link]);
        }
        let _ = command("ip", &["link", "del", br]);
    }
    let left = leftovers(layout, &procs, bridge.as_deref(), &sandboxes);
    if !left.is_empty() {
        return Err(CliError::Failed(format!(
            "left behind: {}",
            left.describe()
        )));
    }
    if !args.keep_files {
        std::fs::remove_dir_all(&layout.home)
            .map_err(|e| CliError::io(format!("removing {}", layout.home.display()), e))?;
    }
    println!(
        "local cluster down: {} processes stopped; no process, mount, interface or cgroup left",
        procs.len()
    );
    Ok(())
}

/// Looks for anything of the cluster that is still there.
pub fn leftovers(
    layout: &Layout,
    procs: &[(String, i32)],
    bridge: Option<&str>,
    sandboxes: &[String],
) -> Leftovers {
    Leftovers {
        processes: procs.iter().filter(|(_, p)| alive(*p)).cloned().collect(),
        mounts: mounts_under(&layout.home),
        interfaces: bridge
            .map(|b| {
                let mut l = links_on(b);
                if command("ip", &["-o", "link", "show", "dev", b]).is_ok() {
                    l.push(b.to_string());
                }
                l
            })
            .unwrap_or_default(),
        cgroups: sandbox_cgroups(sandboxes),
    }
}

fn stop(procs: &[(String, i32)], grace: Duration) {
    let live: Vec<_> = procs.iter().filter(|(_, p)| alive(*p)).collect();
    if live.is_empty() {
        return;
    }
    for (_, pid) in &live {
        signal(*pid, libc::SIGTERM);
    }
    let mut progress = Progress::new(format!("waiting for {} processes to exit", live.len()));
    let deadline = Instant::now() + grace;
    while live.iter().any(|(_, p)| alive(*p)) && Instant::now() < deadline {
        progress.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    progress.done();
    for (name, pid) in &live {
        if alive(*pid) {
            eprintln!("    {name} ({pid}) did not stop in time: killing it");
            signal(*pid, libc::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.iter().any(|(_, p)| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sandbox ids under every node directory of the cluster.
pub fn sandbox_ids(layout: &Layout) -> Vec<String> {
    let mut ids = Vec::new();
    let Ok(nodes) = std::fs::read_dir(layout.home.join("nodes")) else {
        return ids;
    };
    for node in nodes.flatten() {
        if let Ok(sbs) = std::fs::read_dir(node.path().join("sandboxes")) {
            ids.extend(
                sbs.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    ids
}

/// Cgroup directories named after these sandboxes, in any hierarchy.
fn sandbox_cgroups(ids: &[String]) -> Vec<PathBuf> {
    let names: Vec<String> = ids.iter().map(|id| format!("podvisor-{id}")).collect();
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 0, &names, &mut found);
    found
}

fn walk(dir: &Path, depth: usize, names: &[String], found: &mut Vec<PathBuf>) {
    if depth > 8 || names.is_empty() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() || ft.is_symlink() {
            continue;
        }
        let path = e.path();
        if names
            .iter()
            .any(|n| e.file_name().to_string_lossy() == n.as_str())
        {
            found.push(path);
        } else {
            walk(&path, depth + 1, names, found);
        }
    }
}

/// Kills every process of a cgroup and removes it (children first).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        for pid in &pids {
            signal(*pid, libc::SIGKILL);
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mount points at or under `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

fn unmount(path: &str) {
    let Ok(c) = std::ffi::CString::new(path) else {
        return;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration; a lazy unmount of a
    // mount point under the cluster's own directory affects nothing else.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// Interfaces whose master is `bridge`.
fn links_on(bridge: &str) -> Vec<String> {
    command("ip", &["-o", "link", "show", "master", bridge])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}
