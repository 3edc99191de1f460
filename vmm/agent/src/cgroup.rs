//! Control groups, v1 and v2, as the agent and the host use them.
//!
//! A [`Cgroup`] is one node of the hierarchy: one directory on a unified (v2) host, or one
//! directory per controller (memory, cpu, cpuacct, pids) on a v1 or hybrid host. Sandboxes and
//! containers only ever create groups beneath the group the creating process runs in (or beneath
//! a parent the caller names), never at the root.
//!
//! Memory limits and OOM detection use `memory.max` and the `oom_kill` count of `memory.events`
//! on v2, and `memory.limit_in_bytes` and the `oom_kill` count of `memory.oom_control` on v1.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::protocol::{ContainerStats, Limits};

/// The v1 controllers podvisor uses: memory (limit, OOM), cpu (limit), cpuacct (usage).
const V1_CONTROLLERS: [&str; 3] = ["memory", "cpu", "cpuacct"];

/// The CFS period podvisor sets with a CPU limit, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// Errors of the cgroup layer.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable hierarchy was found for this process.
    #[error("no usable cgroup hierarchy: {0}")]
    NoHierarchy(String),
    /// Reading or writing a cgroup file failed.
    #[error("cgroup file {path} failed")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A group name would leave its parent.
    #[error("invalid cgroup name {0:?}")]
    InvalidName(String),
}

/// Which cgroup version a [`Cgroup`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Per-controller hierarchies (including hybrid hosts).
    V1,
    /// The unified hierarchy.
    V2,
}

/// One node of the cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    version: CgroupVersion,
    /// v2: one directory. v1: the memory, cpu, cpuacct and pids directories (deduplicated when
    /// controllers are co-mounted), memory first.
    dirs: Vec<PathBuf>,
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::File {
        path: path.to_owned(),
        source,
    }
}

impl Cgroup {
    /// The group the calling process runs in, read from `/proc/self/cgroup`.
    ///
    /// # Errors
    ///
    /// Fails when neither a v1 memory hierarchy nor a v2 hierarchy is mounted.
    pub fn current() -> Result<Self, CgroupError> {
        let cgroup = read(Path::new("/proc/self/cgroup"))?;
        let mountinfo = read(Path::new("/proc/self/mountinfo"))?;
        Self::from_proc(&cgroup, &mountinfo)
    }

    /// Builds the group from the text of `/proc/<pid>/cgroup` and `/proc/<pid>/mountinfo`.
    ///
    /// # Errors
    ///
    /// Fails when neither a v1 memory hierarchy nor a v2 hierarchy is mounted.
    pub fn from_proc(cgroup: &str, mountinfo: &str) -> Result<Self, CgroupError> {
        let mounts = parse_mountinfo(mountinfo);
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if ctrls.is_empty() {
                v2 = Some(path.to_owned());
            } else {
                for c in ctrls.split(',') {
                    v1.push((c.to_owned(), path.to_owned()));
                }
            }
        }

        if v1.iter().any(|(c, _)| c == "memory") {
            let mut dirs: Vec<PathBuf> = Vec::new();
            for ctrl in V1_CONTROLLERS {
                let Some((_, path)) = v1.iter().find(|(c, _)| c == ctrl) else {
                    continue;
                };
                let Some(m) = mounts
                    .iter()
                    .find(|m| m.fstype == "cgroup" && m.has_option(ctrl))
                else {
                    continue;
                };
                let dir = m.resolve(path);
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
            if dirs.is_empty() {
                return Err(CgroupError::NoHierarchy(
                    "v1 memory controller not mounted".into(),
                ));
            }
            return Ok(Self {
                version: CgroupVersion::V1,
                dirs,
            });
        }

        let path = v2.ok_or_else(|| CgroupError::NoHierarchy("no cgroup in /proc".into()))?;
        let m = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2")
            .ok_or_else(|| CgroupError::NoHierarchy("cgroup2 not mounted".into()))?;
        Ok(Self {
            version: CgroupVersion::V2,
            dirs: vec![m.resolve(&path)],
        })
    }

    /// A v2 group at `dir`, for a parent the caller names.
    pub fn v2_at(dir: impl Into<PathBuf>) -> Self {
        Self {
            version: CgroupVersion::V2,
            dirs: vec![dir.into()],
        }
    }

    /// A v1 group made of one directory per controller, for a parent the caller names.
    pub fn v1_at(dirs: Vec<PathBuf>) -> Self {
        Self {
            version: CgroupVersion::V1,
            dirs,
        }
    }

    /// The cgroup version.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The directories of this group (one on v2).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The `cgroup.procs` files a process writes `0` into to join this group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The group `name` beneath this one, without creating it.
    ///
    /// # Errors
    ///
    /// Fails when `name` is empty or not a single path component.
    pub fn child(&self, name: &str) -> Result<Self, CgroupError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(CgroupError::InvalidName(name.to_owned()));
        }
        let dirs = self.dirs.iter().map(|d| d.join(name)).collect();
        Ok(Self {
            version: self.version,
            dirs,
        })
    }

    /// Like [`Cgroup::child`], leaving out a v1 hierarchy that serves only CPU limits when
    /// `cpu_limit` is false. Every v1 directory costs a `mkdir` and a migration when a process
    /// joins, and on v1 those are slow.
    ///
    /// # Errors
    ///
    /// Fails when `name` is empty or not a single path component.
    pub fn child_for(&self, name: &str, cpu_limit: bool) -> Result<Self, CgroupError> {
        let mut child = self.child(name)?;
        if self.version == CgroupVersion::V1 && !cpu_limit {
            let parents = &self.dirs;
            let keep: Vec<bool> = parents
                .iter()
                .map(|p| !p.join("cpu.cfs_quota_us").exists() || p.join("cpuacct.usage").exists())
                .collect();
            let mut it = keep.iter();
            child
                .dirs
                .retain(|_| *it.next().expect("one flag per directory"));
        }
        Ok(child)
    }

    /// Creates this group's directories (an existing one is kept).
    ///
    /// # Errors
    ///
    /// Fails when a directory cannot be created.
    pub fn create(&self) -> Result<(), CgroupError> {
        for d in &self.dirs {
            match fs::create_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(file_err(d)(e)),
            }
        }
        Ok(())
    }

    /// Makes the group able to hold child groups with memory, cpu and pids controllers.
    ///
    /// On v2 a group with processes cannot delegate controllers, so the processes in it move to
    /// a `supervisor` leaf first. On v1 there is nothing to do.
    ///
    /// # Errors
    ///
    /// Fails when the controllers cannot be enabled.
    pub fn delegate(&self) -> Result<(), CgroupError> {
        if self.version == CgroupVersion::V1 {
            return Ok(());
        }
        let dir = &self.dirs[0];
        let control = dir.join("cgroup.subtree_control");
        let available = read(&dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<String> = ["memory", "cpu", "pids"]
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let line = wanted.join(" ");
        match fs::write(&control, &line) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let leaf = self.child("supervisor")?;
                leaf.create()?;
                for pid in self.pids()? {
                    // A process may exit between listing and moving; that is fine.
                    let _ = fs::write(&leaf.procs_files()[0], pid.to_string());
                }
                fs::write(&control, &line).map_err(file_err(&control))
            }
            Err(e) => Err(file_err(&control)(e)),
        }
    }

    /// Applies memory and CPU limits.
    ///
    /// # Errors
    ///
    /// Fails when a limit file cannot be written.
    pub fn set_limits(&self, limits: &Limits) -> Result<(), CgroupError> {
        match self.version {
            CgroupVersion::V2 => {
                let dir = &self.dirs[0];
                if let Some(bytes) = limits.memory_bytes {
                    write(&dir.join("memory.max"), &bytes.to_string())?;
                    // Without swap the limit ends in the OOM killer rather than in swapping.
                    let _ = write(&dir.join("memory.swap.max"), "0");
                }
                if let Some(m) = limits.cpu_millis {
                    let quota = (m * CPU_PERIOD_US / 1000).max(1000);
                    write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
                }
            }
            CgroupVersion::V1 => {
                if let Some(bytes) = limits.memory_bytes {
                    let dir = self.controller_dir("memory.limit_in_bytes")?;
                    write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &bytes.to_string())?;
                    }
                }
                if let Some(m) = limits.cpu_millis {
                    let dir = self.controller_dir("cpu.cfs_quota_us")?;
                    let quota = (m * CPU_PERIOD_US / 1000).max(1000);
                    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// How many times the OOM killer killed a process of this group.
    ///
    /// # Errors
    ///
    /// Fails when the memory events file cannot be read.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let (file, key) = match self.version {
            CgroupVersion::V2 => (self.dirs[0].join("memory.events"), "oom_kill"),
            CgroupVersion::V1 => (
                self.controller_dir("memory.oom_control")?
                    .join("memory.oom_control"),
                "oom_kill",
            ),
        };
        Ok(keyed_value(&read(&file)?, key).unwrap_or(0))
    }

    /// CPU and memory use of the group.
    ///
    /// # Errors
    ///
    /// Fails when an accounting file cannot be read.
    pub fn stats(&self) -> Result<ContainerStats, CgroupError> {
        let oom_kills = self.oom_kills()?;
        match self.version {
            CgroupVersion::V2 => {
                let dir = &self.dirs[0];
                let cpu = keyed_value(&read(&dir.join("cpu.stat"))?, "usage_usec").unwrap_or(0);
                let mem = read(&dir.join("memory.current"))?
                    .trim()
                    .parse()
                    .unwrap_or(0);
                Ok(ContainerStats {
                    cpu_ns: cpu * 1000,
                    memory_bytes: mem,
                    oom_kills,
                })
            }
            CgroupVersion::V1 => {
                let cpu_dir = self.controller_dir("cpuacct.usage")?;
                let cpu = read(&cpu_dir.join("cpuacct.usage"))?
                    .trim()
                    .parse()
                    .unwrap_or(0);
                let mem_dir = self.controller_dir("memory.usage_in_bytes")?;
                let mem = read(&mem_dir.join("memory.usage_in_bytes"))?
                    .trim()
                    .parse()
                    .unwrap_or(0);
                Ok(ContainerStats {
                    cpu_ns: cpu,
                    memory_bytes: mem,
                    oom_kills,
                })
            }
        }
    }

    /// The pids in the group, as seen from the caller's pid namespace.
    ///
    /// # Errors
    ///
    /// Fails when `cgroup.procs` cannot be read.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let text = read(&self.dirs[0].join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Sends SIGKILL to every process of the group.
    pub fn kill_all(&self) {
        if self.version == CgroupVersion::V2
            && write(&self.dirs[0].join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for _ in 0..3 {
            for pid in self.pids().unwrap_or_default() {
                // SAFETY: kill has no memory effects; a pid that went away yields ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Removes the group's directories, children first, waiting up to `timeout` for the last
    /// processes to leave.
    ///
    /// # Errors
    ///
    /// Fails when a directory still cannot be removed after `timeout`.
    pub fn remove(&self, timeout: Duration) -> Result<(), CgroupError> {
        for d in &self.dirs {
            remove_tree(d, timeout)?;
        }
        Ok(())
    }

    fn controller_dir(&self, file: &str) -> Result<&PathBuf, CgroupError> {
        self.dirs
            .iter()
            .find(|d| d.join(file).exists())
            .ok_or_else(|| CgroupError::NoHierarchy(format!("no controller provides {file}")))
    }
}

fn remove_tree(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path(), timeout)?;
            }
        }
    }
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if waited >= timeout => return Err(file_err(dir)(e)),
            Err(_) => {
                thread::sleep(step);
                waited += step;
            }
        }
    }
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(file_err(path))
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(file_err(path))
}

/// The value of `key` in a `key value` per line file such as `memory.events`.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    options: String,
}

impl Mount {
    fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }

    /// The directory of cgroup `path` under this mount.
    fn resolve(&self, path: &str) -> PathBuf {
        let rel = path.strip_prefix(self.root.as_str()).unwrap_or(path);
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            self.point.clone()
        } else {
            self.point.join(rel)
        }
    }
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                root: left.get(3)?.to_string(),
                point: PathBuf::from(left.get(4)?),
                fstype: right.first()?.to_string(),
                options: right.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CGROUP: &str = "4:memory:/pods/a\n1:cpu,cpuacct:/\n3:pids:/p\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn test_hybrid_host_uses_v1_controllers() {
        let cg = Cgroup::from_proc(HYBRID_CGROUP, HYBRID_MOUNTS).unwrap();
        assert_eq!(cg.version(), CgroupVersion::V1);
        assert_eq!(
            cg.dirs(),
            [
                PathBuf::from("/sys/fs/cgroup/memory/pods/a"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
            ]
        );
    }

    #[test]
    fn test_child_for_skips_the_cpu_only_hierarchy_without_a_cpu_limit() {
        let tmp = tempdir("podvisor-cgchild");
        let dirs: Vec<PathBuf> = ["memory", "cpu", "cpuacct"]
            .iter()
            .map(|d| tmp.join(d))
            .collect();
        for d in &dirs {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(dirs[1].join("cpu.cfs_quota_us"), "-1").unwrap();
        fs::write(dirs[2].join("cpuacct.usage"), "0").unwrap();
        let parent = Cgroup::v1_at(dirs.clone());
        let lean = parent.child_for("c", false).unwrap();
        assert_eq!(lean.dirs(), [dirs[0].join("c"), dirs[2].join("c")]);
        assert_eq!(parent.child_for("c", true).unwrap().dirs().len(), 3);
        fs::remove_dir_all(&tmp).unwrap();
    }

    fn tempdir(prefix: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()))
    }

    #[test]
    fn test_unified_host_uses_v2() {
        let mounts = "40 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = Cgroup::from_proc("0::/user.slice/x\n", mounts).unwrap();
        assert_eq!(cg.version(), CgroupVersion::V2);
        assert_eq!(cg.dirs(), [PathBuf::from("/sys/fs/cgroup/user.slice/x")]);
    }

    #[test]
    fn test_child_fails_when_name_escapes_parent() {
        let cg = Cgroup::v2_at("/tmp/x");
        assert!(cg.child("..").is_err());
        assert!(cg.child("a/b").is_err());
        assert!(cg.child("ok").is_ok());
    }

    #[test]
    fn test_v2_limits_stats_and_oom_files() {
        let tmp = std::env::temp_dir().join(format!("podvisor-cgv2-{}", std::process::id()));
        fs::create_dir_all(&tmp).unwrap();
        fs::write(
            tmp.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
        )
        .unwrap();
        fs::write(tmp.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        fs::write(tmp.join("memory.current"), "4096\n").unwrap();
        let cg = Cgroup::v2_at(&tmp);
        cg.set_limits(&Limits {
            memory_bytes: Some(1 << 20),
            cpu_millis: Some(500),
        })
        .unwrap();
        assert_eq!(
            fs::read_to_string(tmp.join("memory.max")).unwrap(),
            "1048576"
        );
        assert_eq!(
            fs::read_to_string(tmp.join("memory.swap.max")).unwrap(),
            "0"
        );
        assert_eq!(
            fs::read_to_string(tmp.join("cpu.max")).unwrap(),
            "50000 100000"
        );
        let stats = cg.stats().unwrap();
        assert_eq!(
            stats,
            ContainerStats {
                cpu_ns: 1_500_000,
                memory_bytes: 4096,
                oom_kills: 1
            }
        );
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn test_v1_limits_and_oom_files() {
        let tmp = std::env::temp_dir().join(format!("podvisor-cgv1-{}", std::process::id()));
        let (mem, cpu) = (tmp.join("memory"), tmp.join("cpu"));
        fs::create_dir_all(&mem).unwrap();
        fs::create_dir_all(&cpu).unwrap();
        for f in ["memory.limit_in_bytes", "memory.usage_in_bytes"] {
            fs::write(mem.join(f), "0").unwrap();
        }
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        for f in ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpuacct.usage"] {
            fs::write(cpu.join(f), "0").unwrap();
        }
        let cg = Cgroup::v1_at(vec![mem.clone(), cpu.clone()]);
        cg.set_limits(&Limits {
            memory_bytes: Some(8 << 20),
            cpu_millis: Some(250),
        })
        .unwrap();
        assert_eq!(
            fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
            "8388608"
        );
        assert_eq!(
            fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "25000"
        );
        assert_eq!(cg.oom_kills().unwrap(), 3);
        fs::remove_dir_all(&tmp).unwrap();
    }
}
