//! The agent's duties as PID 1 and its two ways of meeting the host.
//!
//! In a namespace sandbox the host hands the agent one end of a Unix socket pair; when the
//! connection ends the agent exits and the kernel ends the sandbox's pid namespace with it. In a
//! micro-VM the agent is `/init`: it mounts the basic filesystems, loads the kernel modules named
//! on the kernel command line, listens on vsock, and powers the VM off at the end.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::reaper::Reaper;
use super::server::{self, Ending};
use super::sys;

/// The vsock port the agent listens on in a micro-VM.
pub const VSOCK_PORT: u32 = 1024;

/// Serves a namespace sandbox on the inherited socket `fd`.
pub fn serve_namespace_sandbox(fd: i32) -> i32 {
    if let Err(e) = namespace_mounts() {
        eprintln!("podvisor-agent: {e}");
        return 1;
    }
    let _ = sys::set_cloexec(fd);
    // SAFETY: the host passed this socket to the agent alone, at this number.
    let sock = unsafe { File::from_raw_fd(fd) };
    let writer = match sock.try_clone() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("podvisor-agent: socket: {e}");
            return 1;
        }
    };
    let reaper = Reaper::start();
    match server::serve(sock, Box::new(writer), reaper) {
        Ending::Shutdown => 0,
        Ending::Lost(e) => {
            eprintln!("podvisor-agent: connection ended: {e}");
            1
        }
    }
}

/// The sandbox's own view: nothing propagates back to the host, and /proc shows the sandbox's
/// pid namespace.
fn namespace_mounts() -> io::Result<()> {
    let slash = Path::new("/");
    sys::mount("none", slash, "", libc::MS_REC | libc::MS_PRIVATE, None)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    sys::mount("proc", Path::new("/proc"), "proc", flags, None)?;
    sys::loopback_up()
}

/// Serves a micro-VM as its `/init`.
pub fn serve_micro_vm() -> i32 {
    for (src, dir, fstype, data) in [
        ("proc", "/proc", "proc", None),
        ("sysfs", "/sys", "sysfs", None),
        ("devtmpfs", "/dev", "devtmpfs", Some("mode=0755")),
        ("tmpfs", "/run", "tmpfs", Some("mode=0755")),
        ("tmpfs", "/tmp", "tmpfs", Some("mode=1777")),
        ("cgroup2", "/sys/fs/cgroup", "cgroup2", None),
    ] {
        let _ = fs::create_dir_all(dir);
        if let Err(e) = sys::mount(src, Path::new(dir), fstype, 0, data) {
            eprintln!("podvisor-agent: {e}");
        }
    }
    if let Err(e) = sys::loopback_up() {
        eprintln!("podvisor-agent: {e}");
    }
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    for module in modules_from_cmdline(&cmdline) {
        let path = Path::new("/lib/modules").join(&module);
        if let Err(e) = sys::load_module(&path) {
            eprintln!("podvisor-agent: {e}");
        }
    }

    let reaper = Reaper::start();
    let code = match vsock_accept(VSOCK_PORT) {
        Ok(sock) => {
            let sock = File::from(sock);
            match sock.try_clone() {
                Ok(w) => match server::serve(sock, Box::new(w), reaper) {
                    Ending::Shutdown => 0,
                    Ending::Lost(_) => 1,
                },
                Err(_) => 1,
            }
        }
        Err(e) => {
            eprintln!("podvisor-agent: vsock port {VSOCK_PORT}: {e}");
            1
        }
    };
    // SAFETY: sync and reboot take no memory arguments; PID 1 ending the VM is the intent.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF);
    }
    code
}

/// The modules listed as `podvisor.modules=a.ko,b.ko`, in order.
pub fn modules_from_cmdline(cmdline: &str) -> Vec<String> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("podvisor.modules="))
        .flat_map(|l| l.split(','))
        .filter(|m| !m.is_empty() && !m.contains('/'))
        .map(str::to_owned)
        .collect()
}

/// Listens on vsock `port` and accepts the host's one connection.
fn vsock_accept(port: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket call; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let listener = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_vm is plain data; zeroed is a valid starting value.
    let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    addr.svm_port = port;
    addr.svm_cid = libc::VMADDR_CID_ANY;
    let len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_vm of `len` bytes.
    let ret = unsafe { libc::bind(listener.as_raw_fd(), (&raw const addr).cast(), len) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen on a bound socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept without peer address on a listening socket we own.
    let conn = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if conn < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `conn` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(conn) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_modules_are_read_from_cmdline_without_paths() {
        let cmd = "console=ttyS0 podvisor.modules=virtio_mmio.ko,vsock.ko,../x.ko quiet";
        assert_eq!(modules_from_cmdline(cmd), ["virtio_mmio.ko", "vsock.ko"]);
    }
}
