//! The child roles: `container-init` (PID 1 of a container) and `exec-in` (a process entering a
//! running container). Both are single-threaded, so they may fork freely.
//!
//! `container-init` sets up the container's root (a private bind of the rootfs, `/proc`, a small
//! `/dev`, then `pivot_root`), sets the host name, tells the agent it is ready and waits for the
//! start byte. It then forks the container's process, reaps every process of the container and
//! reports the exit of the first. When it exits, the kernel ends the rest of the pid namespace.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{CONFIG_FD, ExecConfig, InitConfig, REPORT_FD, Report, START_FD, sys, user};
use crate::protocol::{FrameReader, FrameWriter, ProcessSpec};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Device nodes bound from the agent's `/dev` into every container.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn reporter() -> FrameWriter<File> {
    // SAFETY: the agent placed the report pipe at REPORT_FD for this process alone.
    FrameWriter::new(unsafe { File::from_raw_fd(REPORT_FD) })
}

fn read_config<T: serde::de::DeserializeOwned>() -> Result<T, String> {
    // SAFETY: the agent placed the config pipe at CONFIG_FD for this process alone.
    let f = unsafe { File::from_raw_fd(CONFIG_FD) };
    FrameReader::new(f)
        .read()
        .map_err(|e| format!("reading configuration: {e}"))
}

fn join_cgroup(procs: &[String]) -> Result<(), String> {
    for p in procs {
        fs::write(p, "0").map_err(|e| format!("joining cgroup {p}: {e}"))?;
    }
    Ok(())
}

/// Entry of `container-init`.
pub fn container_init() -> i32 {
    let mut report = reporter();
    let cfg: InitConfig = match read_config() {
        Ok(c) => c,
        Err(e) => {
            let _ = report.write(&Report::Failed(e));
            return 1;
        }
    };
    if let Err(e) = prepare_container(&cfg) {
        let _ = report.write(&Report::Failed(e));
        return 1;
    }
    if report.write(&Report::Ready).is_err() {
        return 1;
    }

    // SAFETY: the agent placed the start pipe at START_FD for this process alone.
    let mut start = unsafe { File::from_raw_fd(START_FD) };
    let mut byte = [0u8; 1];
    if !matches!(start.read(&mut byte), Ok(1)) {
        // The agent destroyed the container before starting it.
        return 0;
    }
    drop(start);

    // SAFETY: container-init is single-threaded.
    let main = match unsafe { sys::fork() } {
        Ok(0) => exec_process(&cfg.process),
        Ok(pid) => pid,
        Err(e) => {
            let _ = report.write(&Report::Failed(e.to_string()));
            return 1;
        }
    };

    // Only the container's processes may hold its output pipes, so that their end is its end.
    release_stdio();
    let _ = report.write(&Report::Started(main));
    loop {
        match sys::wait_any(0) {
            Ok(Some((pid, status))) if pid == main => {
                let _ = report.write(&Report::MainExited(status));
                return 0;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return 0,
        }
    }
}

/// Mount namespace, root, host name: everything before the start byte.
fn prepare_container(cfg: &InitConfig) -> Result<(), String> {
    join_cgroup(&cfg.cgroup_procs)?;
    let root = PathBuf::from(&cfg.rootfs);
    let slash = Path::new("/");
    let rec_private = libc::MS_REC | libc::MS_PRIVATE;
    sys::mount("none", slash, "", rec_private, None).map_err(|e| e.to_string())?;
    sys::mount(&cfg.rootfs, &root, "", libc::MS_BIND | libc::MS_REC, None)
        .map_err(|e| e.to_string())?;

    let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let proc_dir = inside(&root, "proc")?;
    sys::mount("proc", &proc_dir, "proc", nosuid, None).map_err(|e| e.to_string())?;
    if let Ok(sys_dir) = inside(&root, "sys") {
        let ro = nosuid | libc::MS_RDONLY;
        // sysfs needs the network namespace to belong to our user namespace; without it the
        // container simply has no /sys.
        let _ = sys::mount("sysfs", &sys_dir, "sysfs", ro, None);
    }
    setup_dev(&root)?;

    sys::pivot_root(&root).map_err(|e| e.to_string())?;
    if !cfg.hostname.is_empty() {
        sys::sethostname(&cfg.hostname).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `root/name` as a real directory of the rootfs, created if missing, never through a symlink.
fn inside(root: &Path, name: &str) -> Result<PathBuf, String> {
    let p = root.join(name);
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(format!("/{name} in the rootfs is not a directory")),
        Err(_) => {
            fs::create_dir(&p).map_err(|e| format!("creating /{name} in the rootfs: {e}"))?;
            Ok(p)
        }
    }
}

fn setup_dev(root: &Path) -> Result<(), String> {
    let dev = inside(root, "dev")?;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    sys::mount("tmpfs", &dev, "tmpfs", flags, Some("mode=755,size=65536k"))
        .map_err(|e| e.to_string())?;
    for d in DEVICES {
        let target = dev.join(d);
        File::create(&target).map_err(|e| format!("creating /dev/{d}: {e}"))?;
        let host = Path::new("/dev").join(d);
        if host.exists() {
            sys::mount(&host.to_string_lossy(), &target, "", libc::MS_BIND, None)
                .map_err(|e| e.to_string())?;
        }
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(name)).map_err(|e| e.to_string())?;
    }
    let shm = dev.join("shm");
    fs::create_dir(&shm).map_err(|e| e.to_string())?;
    fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Points this process's stdio at /dev/null.
fn release_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = sys::dup_to(null.as_raw_fd(), fd);
        }
    }
}

/// In a forked child: become the container's process. Never returns.
fn exec_process(spec: &ProcessSpec) -> ! {
    // SAFETY: closing the role's pipes, which this child must not keep open.
    unsafe {
        libc::close(CONFIG_FD);
        libc::close(REPORT_FD);
        libc::close(START_FD);
    }
    let err = prepare_and_exec(spec);
    eprintln!("podvisor: {err}");
    // SAFETY: ending the forked child without running the parent's exit handlers.
    unsafe { libc::_exit(127) }
}

fn prepare_and_exec(spec: &ProcessSpec) -> String {
    for s in 1..32 {
        if s != libc::SIGKILL && s != libc::SIGSTOP {
            sys::default_signal(s);
        }
    }
    let id = match user::resolve_in_root(&spec.user) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", id.home.as_deref().unwrap_or("/")));
    }
    let cwd = if spec.cwd.is_empty() {
        "/"
    } else {
        spec.cwd.as_str()
    };
    if let Err(e) = sys::set_identity(id.uid, id.gid, &[id.gid]) {
        return e.to_string();
    }
    if let Err(e) = std::env::set_current_dir(cwd) {
        return format!("working directory {cwd}: {e}");
    }
    let Some(arg0) = spec.args.first() else {
        return "empty command".into();
    };
    let program = match find_program(arg0, &env) {
        Some(p) => p,
        None => return format!("{arg0}: not found in PATH"),
    };
    sys::execve(&program, &spec.args, &env).to_string()
}

fn find_program(arg0: &str, env: &[String]) -> Option<PathBuf> {
    if arg0.contains('/') {
        return Some(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':').map(|d| Path::new(d).join(arg0)).find(|p| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// Entry of `exec-in`.
pub fn exec_in() -> i32 {
    let mut report = reporter();
    let cfg: ExecConfig = match read_config() {
        Ok(c) => c,
        Err(e) => {
            let _ = report.write(&Report::Failed(e));
            return 1;
        }
    };
    if let Err(e) = enter(&cfg) {
        let _ = report.write(&Report::Failed(e));
        return 1;
    }

    // SAFETY: exec-in is single-threaded.
    let child = match unsafe { sys::fork() } {
        Ok(0) => exec_process(&cfg.process),
        Ok(pid) => pid,
        Err(e) => {
            let _ = report.write(&Report::Failed(e.to_string()));
            return 1;
        }
    };
    release_stdio();
    let _ = report.write(&Report::Started(child));
    drop(report);

    // Mirror the process's end, so the agent reaping us sees the same code or signal.
    let status = sys::wait_pid(child).unwrap_or(0);
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        sys::default_signal(sig);
        // SAFETY: getpid has no preconditions.
        let _ = sys::kill(unsafe { libc::getpid() }, sig);
    }
    libc::WEXITSTATUS(status)
}

fn enter(cfg: &ExecConfig) -> Result<(), String> {
    join_cgroup(&cfg.cgroup_procs)?;
    let open = |ns: &str| -> Result<OwnedFd, String> {
        let p = format!("/proc/{}/ns/{ns}", cfg.init_pid);
        File::open(&p)
            .map(OwnedFd::from)
            .map_err(|e: io::Error| format!("opening {p}: {e}"))
    };
    // All namespaces are opened first: after entering the mount namespace /proc is the
    // container's.
    let fds = [
        ("ipc", open("ipc")?),
        ("uts", open("uts")?),
        ("pid", open("pid")?),
    ];
    let mnt = open("mnt")?;
    for (name, fd) in &fds {
        sys::setns(fd, name).map_err(|e| e.to_string())?;
    }
    sys::setns(&mnt, "mnt").map_err(|e| e.to_string())?;
    Ok(())
}
