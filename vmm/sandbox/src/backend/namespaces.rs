//! The namespace backend: the agent runs on the host in fresh user, mount, pid, net, uts and ipc
//! namespaces, under a cgroup of its own, and is reached over a Unix socket pair.
//!
//! The host's root is mapped to root in the sandbox's user namespace, so the agent can manage
//! its containers' cgroups, which belong to the host's root.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use podvisor_agent::cgroup::Cgroup;

use super::{Backend, Instance, Launched, UnixTransport};
use crate::{Isolation, SandboxConfig, SandboxError};

/// The descriptor number of the socket in the agent.
const AGENT_FD: i32 = 3;

/// Linux namespaces and cgroups on the host.
#[derive(Debug, Default, Clone, Copy)]
pub struct NamespaceBackend;

fn refused(reason: impl Into<String>) -> SandboxError {
    SandboxError::Refused {
        isolation: Isolation::Namespaces,
        reason: reason.into(),
    }
}

impl Backend for NamespaceBackend {
    fn isolation(&self) -> Isolation {
        Isolation::Namespaces
    }

    fn check_host(&self) -> Result<(), SandboxError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(refused(
                "podvisor must run as root to map users and manage cgroups",
            ));
        }
        if !Path::new("/proc/self/ns/user").exists() {
            return Err(refused("the kernel has no user namespaces"));
        }
        let max = fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
        if max.trim() == "0" {
            return Err(refused(
                "user namespaces are disabled (user.max_user_namespaces = 0)",
            ));
        }
        Cgroup::current().map_err(|e| refused(e.to_string()))?;
        Ok(())
    }

    fn launch(&self, config: &SandboxConfig) -> Result<Launched, SandboxError> {
        self.check_host()?;
        if !config.agent.is_file() {
            return Err(SandboxError::InvalidArgument(format!(
                "agent binary {} does not exist",
                config.agent.display()
            )));
        }
        let parent = match &config.cgroup_parent {
            Some(p) => p.clone(),
            None => Cgroup::current().map_err(|e| refused(e.to_string()))?,
        };
        let cgroup = parent
            .child(&format!("podvisor-{}", config.id))
            .map_err(|e| SandboxError::InvalidArgument(e.to_string()))?;
        parent.delegate().map_err(|e| refused(e.to_string()))?;
        cgroup.create().map_err(|e| refused(e.to_string()))?;

        let log = config.sandbox_dir().join("agent.log");
        match spawn_agent(&config.agent, &cgroup, &log) {
            Ok((pid, host_end)) => Ok(Launched {
                transport: Box::new(UnixTransport::new(host_end)),
                instance: Box::new(NamespaceInstance {
                    pid: Some(pid),
                    cgroup,
                }),
            }),
            Err(e) => {
                cgroup.kill_all();
                let _ = cgroup.remove(Duration::from_secs(5));
                Err(e)
            }
        }
    }
}

/// Starts the agent in its namespaces; returns its pid and the host's end of the socket.
fn spawn_agent(
    agent: &Path,
    cgroup: &Cgroup,
    log: &Path,
) -> Result<(i32, UnixStream), SandboxError> {
    let (host_end, agent_end) =
        UnixStream::pair().map_err(|e| SandboxError::host("socket pair", agent, e))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| SandboxError::host("opening the agent log", log, e))?;
    let (sync_r, sync_w) = pipe().map_err(|e| SandboxError::host("pipe", agent, e))?;
    let bad = |_| SandboxError::InvalidArgument("NUL byte in the agent path".into());
    let exe = CString::new(agent.as_os_str().as_bytes()).map_err(bad)?;
    let args = [c"podvisor-agent", c"serve-fd", c"3"];
    let argv = [
        args[0].as_ptr(),
        args[1].as_ptr(),
        args[2].as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null()];
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC;
    let (sock_fd, log_fd, sync_fd) = (agent_end.as_raw_fd(), log.as_raw_fd(), sync_r.as_raw_fd());

    // SAFETY: clone without a new stack behaves like fork. The child only runs async-signal-safe
    // calls (read, fcntl, dup2, execve, _exit) on memory prepared above, so it is sound even
    // though the host process is multithreaded.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == -1 {
        let e = io::Error::last_os_error();
        return Err(refused(format!(
            "cannot create the sandbox namespaces: {e}"
        )));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            let mut b = [0u8; 1];
            if libc::read(sync_fd, b.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(1);
            }
            let s = libc::fcntl(sock_fd, libc::F_DUPFD_CLOEXEC, 64);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if s < 0 || null < 0 || libc::dup2(s, AGENT_FD) < 0 {
                libc::_exit(1);
            }
            libc::dup2(null, 0);
            libc::dup2(log_fd, 1);
            libc::dup2(log_fd, 2);
            libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let pid = pid as i32;
    drop(agent_end);

    let setup = || -> io::Result<()> {
        // Root of the sandbox is the host's root: the agent must manage cgroups owned by it.
        fs::write(format!("/proc/{pid}/uid_map"), "0 0 4294967295")?;
        fs::write(format!("/proc/{pid}/gid_map"), "0 0 4294967295")?;
        for procs in cgroup.procs_files() {
            fs::write(&procs, pid.to_string())?;
        }
        io::Write::write_all(&mut &sync_w, &[1])
    };
    if let Err(e) = setup() {
        kill_and_reap(pid);
        return Err(SandboxError::host(
            "setting up the agent's namespaces",
            agent,
            e,
        ));
    }
    Ok((pid, host_end))
}

fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe {
        use std::os::fd::FromRawFd;
        (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
    })
}

fn kill_and_reap(pid: i32) {
    // SAFETY: kill and waitpid on our own child; no memory is shared.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// A running namespace sandbox.
struct NamespaceInstance {
    pid: Option<i32>,
    cgroup: Cgroup,
}

impl Instance for NamespaceInstance {
    fn netns(&self) -> Option<PathBuf> {
        self.pid.map(|p| PathBuf::from(format!("/proc/{p}/ns/net")))
    }

    fn terminate(&mut self, timeout: Duration) -> Result<(), SandboxError> {
        if let Some(pid) = self.pid.take() {
            // A timeout past the clock's range sets no deadline.
            let deadline = Instant::now().checked_add(timeout);
            loop {
                // SAFETY: waitpid on our own child with a valid status pointer.
                let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                if r != 0 {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    tracing::warn!(pid, "agent did not exit, killing the sandbox");
                    kill_and_reap(pid);
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
        }
        self.cgroup.kill_all();
        self.cgroup.remove(Duration::from_secs(10)).map_err(|e| {
            let path = self.cgroup.dirs().first().cloned().unwrap_or_default();
            SandboxError::host(
                "removing the sandbox cgroup",
                path,
                io::Error::other(e.to_string()),
            )
        })
    }
}

impl Drop for NamespaceInstance {
    fn drop(&mut self) {
        if self.pid.is_some() {
            let _ = self.terminate(Duration::ZERO);
        }
    }
}
