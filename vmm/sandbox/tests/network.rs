//! Pod networking: HTTP from the host to busybox httpd in a pod, and from one pod to another,
//! over veth pairs on a bridge; teardown removes every interface the sandboxes added.
//!
//! The "host" side is a network namespace this test creates, so the test touches no real
//! interface of the machine.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use podvisor_sandbox::{ExitStatus, Isolation, NetworkConfig, ProcessRef, Sandbox, SandboxConfig};

const SUBNET: [u8; 3] = [10, 231, 7];

/// A named network namespace standing in for the node's host network.
struct HostNetns(String);

impl HostNetns {
    fn new() -> Self {
        let name = format!("podvisor-test-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        Self(name)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    fn links(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-o", "link", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread inside this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap();
            // SAFETY: setns on an open namespace descriptor affects only this thread.
            let ret = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(ret, 0, "entering the host namespace");
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for HostNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], last)
}

fn networked_sandbox(id: &str, host: &HostNetns, last: u8) -> Sandbox {
    let mut config = SandboxConfig::new(id, Isolation::Namespaces, state_dir(), agent());
    config.network = Some(NetworkConfig {
        bridge: "pdvtest0".into(),
        address: addr(last),
        prefix_len: 24,
        gateway: addr(1),
        host_netns: Some(host.path()),
    });
    Sandbox::create(config).expect("networked sandbox")
}

fn http_get(to: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[test]
fn http_reaches_a_pod_from_the_host_and_from_another_pod() {
    let host = HostNetns::new();
    let a = networked_sandbox("net-a", &host, 2);
    let b = networked_sandbox("net-b", &host, 3);

    a.create_container(&container(
        "web",
        &["httpd", "-f", "-p", "8080", "-h", "/var/www"],
    ))
    .unwrap();
    a.start("web").unwrap();

    let target = SocketAddr::from((addr(2), 8080));
    let response = host.run(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match http_get(target) {
                Ok(r) => return r,
                Err(e) if Instant::now() > deadline => panic!("host -> pod: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.ends_with("hello from a podvisor pod\n"),
        "{response}"
    );

    let script = format!(
        "i=0; until wget -qO- http://{}:8080/index.html; do i=$((i+1)); \
         [ $i -gt 100 ] && exit 9; sleep 0.05; done",
        addr(2)
    );
    let rx = b.subscribe(&ProcessRef::main("client"));
    b.create_container(&container("client", &["sh", "-c", &script]))
        .unwrap();
    b.start("client").unwrap();
    let out = collect(&rx, Duration::from_secs(30));
    assert_eq!(out.stdout_text(), "hello from a podvisor pod\n");
    assert_eq!(out.status, Some(ExitStatus::Code(0)));

    let links = host.links();
    assert_eq!(links.matches(" master pdvtest0 ").count(), 2, "{links}");
    a.destroy().unwrap();
    b.destroy().unwrap();

    let links = host.links();
    assert!(!links.contains("pvh"), "veth left after teardown: {links}");
    assert_eq!(
        links.lines().count(),
        2,
        "only lo and the bridge remain: {links}"
    );
}
