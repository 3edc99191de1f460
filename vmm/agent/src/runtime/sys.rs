//! Thin, checked wrappers over the Linux calls the agent makes: clone, mount, pivot_root, setns.
//!
//! Each wrapper turns a failed call into an [`io::Error`] that names the call and its argument,
//! so an error that reaches the host says what failed and where.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The highest number of descriptors [`spawn_self`] places in a child.
const MAX_CHILD_FDS: usize = 8;

fn cstr(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| io::Error::other("NUL byte in argument"))
}

fn check(ret: libc::c_int, what: impl FnOnce() -> String) -> io::Result<libc::c_int> {
    if ret == -1 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{}: {e}", what())))
    } else {
        Ok(ret)
    }
}

/// A pipe whose two ends close on exec: `(read, write)`.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    check(ret, || "pipe2".into())?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// Marks a descriptor close-on-exec.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on any descriptor number is memory-safe; a bad one yields EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    check(ret, || format!("fcntl {fd}"))?;
    Ok(())
}

/// Starts this very binary again as `argv[1] = mode` in a new process created with the clone
/// `flags` (namespaces), with `fds[i].1` placed at descriptor `fds[i].0`. Returns its pid.
///
/// The child runs only async-signal-safe calls (fcntl, dup2, execve) between clone and exec,
/// so this is sound in a multithreaded process.
pub fn spawn_self(flags: libc::c_int, mode: &str, fds: &[(RawFd, RawFd)]) -> io::Result<i32> {
    assert!(
        fds.len() <= MAX_CHILD_FDS,
        "spawn_self places at most {MAX_CHILD_FDS} descriptors"
    );
    let exe = cstr("/proc/self/exe")?;
    let arg0 = cstr("podvisor-agent")?;
    let arg1 = cstr(mode)?;
    let argv = [arg0.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let mut plan = [(0, 0); MAX_CHILD_FDS];
    plan[..fds.len()].copy_from_slice(fds);
    let n = fds.len();

    // SAFETY: clone without a new stack behaves like fork. The child below only calls
    // async-signal-safe functions on memory prepared before the call, then execs or exits.
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
        return Err(io::Error::other(format!(
            "clone (flags {flags:#x}): {}",
            io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // SAFETY: see above; only fcntl, dup2, execve and _exit run here.
        unsafe {
            let mut tmp = [0; MAX_CHILD_FDS];
            for i in 0..n {
                tmp[i] = libc::fcntl(plan[i].1, libc::F_DUPFD_CLOEXEC, 64);
                if tmp[i] < 0 {
                    libc::_exit(126);
                }
            }
            for i in 0..n {
                if libc::dup2(tmp[i], plan[i].0) < 0 {
                    libc::_exit(126);
                }
            }
            libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    Ok(pid as i32)
}

/// Forks a single-threaded process. Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
///
/// The caller must be single-threaded, as the child continues with a copy of its memory.
pub unsafe fn fork() -> io::Result<i32> {
    // SAFETY: the caller guarantees there is no other thread whose locks the child could inherit.
    check(unsafe { libc::fork() }, || "fork".into())
}

/// `mount(2)`.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let (s, t, f) = (cstr(source)?, cstr(target)?, cstr(fstype)?);
    let d = data.map(cstr).transpose()?;
    let dp = d.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast());
    // SAFETY: every pointer is a NUL-terminated string that outlives the call, or null for data.
    let ret = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, dp) };
    check(ret, || {
        format!("mount {fstype} {source} on {}", target.display())
    })?;
    Ok(())
}

/// `umount2(2)`.
pub fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: `t` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::umount2(t.as_ptr(), flags) }, || {
        format!("umount {}", target.display())
    })?;
    Ok(())
}

/// Makes `new_root` the root of the calling process's mount namespace and detaches the old one.
pub fn pivot_root(new_root: &Path) -> io::Result<()> {
    let root = cstr(new_root)?;
    let dot = cstr(".")?;
    // SAFETY: `root` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::chdir(root.as_ptr()) }, || {
        format!("chdir {}", new_root.display())
    })?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the call. Stacking the old
    // root under the new one and detaching it avoids needing a directory for it.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } as i32;
    check(ret, || format!("pivot_root {}", new_root.display()))?;
    umount(Path::new("."), libc::MNT_DETACH)?;
    let slash = cstr("/")?;
    // SAFETY: `slash` is a NUL-terminated string.
    check(unsafe { libc::chdir(slash.as_ptr()) }, || "chdir /".into())?;
    Ok(())
}

/// `sethostname(2)`.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    let ret = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    check(ret, || format!("sethostname {name}"))?;
    Ok(())
}

/// Joins the namespace `ns` refers to.
pub fn setns(ns: &OwnedFd, what: &str) -> io::Result<()> {
    // SAFETY: `ns` is an open descriptor; nstype 0 accepts any namespace type.
    check(unsafe { libc::setns(ns.as_raw_fd(), 0) }, || {
        format!("setns {what}")
    })?;
    Ok(())
}

/// `unshare(2)`.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare only changes the calling thread's namespaces.
    check(unsafe { libc::unshare(flags) }, || {
        format!("unshare {flags:#x}")
    })?;
    Ok(())
}

/// Waits for any child; returns `(pid, raw status)`, or `None` when there is no child.
pub fn wait_any(flags: libc::c_int) -> io::Result<Option<(i32, i32)>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for the kernel to fill.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid > 0 {
            return Ok(Some((pid, status)));
        }
        if pid == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Waits for child `pid`; returns its raw status.
pub fn wait_pid(pid: i32) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for the kernel to fill.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Sends `signal` to `pid`.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill has no memory effects.
    check(unsafe { libc::kill(pid, signal) }, || {
        format!("kill {pid} with signal {signal}")
    })?;
    Ok(())
}

/// Replaces the process image; returns only on failure.
pub fn execve(path: &Path, args: &[String], env: &[String]) -> io::Error {
    let to_c = |v: &[String]| v.iter().map(cstr).collect::<io::Result<Vec<_>>>();
    let (p, a, e) = match (cstr(path), to_c(args), to_c(env)) {
        (Ok(p), Ok(a), Ok(e)) => (p, a, e),
        _ => return io::Error::other("NUL byte in command or environment"),
    };
    let mut av: Vec<*const libc::c_char> = a.iter().map(|s| s.as_ptr()).collect();
    av.push(std::ptr::null());
    let mut ev: Vec<*const libc::c_char> = e.iter().map(|s| s.as_ptr()).collect();
    ev.push(std::ptr::null());
    // SAFETY: all arrays are NUL-terminated lists of NUL-terminated strings that outlive the call.
    unsafe { libc::execve(p.as_ptr(), av.as_ptr(), ev.as_ptr()) };
    let err = io::Error::last_os_error();
    io::Error::new(err.kind(), format!("exec {}: {err}", path.display()))
}

/// Switches to `uid`, `gid` and the supplementary `groups`, in that safe order.
pub fn set_identity(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe `groups`.
    let ret = unsafe { libc::setgroups(groups.len(), groups.as_ptr()) };
    check(ret, || "setgroups".into())?;
    // SAFETY: plain syscalls without memory arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) }, || {
        format!("setgid {gid}")
    })?;
    // SAFETY: plain syscall without memory arguments.
    check(unsafe { libc::setresuid(uid, uid, uid) }, || {
        format!("setuid {uid}")
    })?;
    Ok(())
}

/// Moves descriptor `from` to `to` (dup2), leaving `to` open across exec.
pub fn dup_to(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptor numbers is memory-safe.
    check(unsafe { libc::dup2(from, to) }, || {
        format!("dup2 {from} {to}")
    })?;
    Ok(())
}

/// Sets the calling process's disposition of `signal` back to the default.
pub fn default_signal(signal: i32) {
    // SAFETY: SIG_DFL is a valid disposition for every catchable signal.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Loads the kernel module in `path` (`finit_module`).
pub fn load_module(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    let params = cstr("")?;
    // SAFETY: the descriptor is open and `params` is a NUL-terminated string.
    let ret = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if ret == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EEXIST) {
            return Ok(());
        }
        return Err(io::Error::new(
            e.kind(),
            format!("load module {}: {e}", path.display()),
        ));
    }
    Ok(())
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd, || "socket for interface flags".into())?;
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid starting value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming "lo" for the kernel to fill.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    check(ret, || "SIOCGIFFLAGS lo".into())?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `req` is a valid ifreq naming "lo" with the new flags.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    check(ret, || "SIOCSIFFLAGS lo".into())?;
    Ok(())
}
