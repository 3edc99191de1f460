//! Shared by the control-plane tests: a real three-master store in this process with the
//! controllers running on every master, node agents running namespace sandboxes, and a busybox
//! root filesystem to run in them.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use podvisor_cluster::controllers::{ControllerConfig, Controllers};
use podvisor_cluster::node::{NodeAgent, NodeAgentConfig};
use podvisor_cluster::objects::{Kind, Object, Pod, RuntimeClass, parse_manifests};
use podvisor_cluster::registry::Registry;
use podvisor_store::api::Member;
use podvisor_store::{Client, ClientConfig, Master, MasterConfig};

/// A directory that lives as long as the test process.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("podvisor-cluster-test-")
            .tempdir()
            .expect("a temporary directory")
    })
    .path()
}

/// A free loopback port below Linux's ephemeral range (32768 and up), so that no outgoing
/// connection of a test running beside this one can take it between this check and the bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread test processes apart; probe on from there.
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 25_000 + (start.wrapping_add(n.wrapping_mul(13)) % 7_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The static agent: `PODVISOR_AGENT`, which `make test-cluster` sets.
pub fn agent_binary() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("PODVISOR_AGENT")
            .expect("PODVISOR_AGENT must name the static agent (make test-cluster builds it)"),
    );
    assert!(path.is_file(), "agent binary {} missing", path.display());
    path
}

/// An image directory holding `busybox`, a root filesystem of Debian's busybox-static.
pub fn image_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let images = scratch().join("images");
        let root = images.join("busybox");
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys"] {
            std::fs::create_dir_all(root.join(d)).expect("rootfs dirs");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("Debian's busybox-static is installed (make deps)");
        for applet in [
            "sh", "sleep", "echo", "cat", "true", "false", "kill", "httpd",
        ] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
        images
    })
    .clone()
}

/// Three masters in this process, each also running the controllers.
pub struct ControlPlane {
    pub members: Vec<Member>,
    masters: Vec<Option<Master>>,
    controllers: Vec<Option<Controllers>>,
    /// This plane's own directory; its nodes keep their state below it.
    pub dir: PathBuf,
    pub controller_config: ControllerConfig,
}

impl ControlPlane {
    /// Starts the masters, waits for a leader, and starts the controllers beside each master.
    pub fn start(name: &str, controller_config: ControllerConfig) -> ControlPlane {
        let mut plane = ControlPlane::store_only(name);
        plane.controller_config = controller_config;
        for m in plane.members.clone() {
            let mut cfg = plane.controller_config.clone();
            cfg.identity = format!("master-{}", m.id);
            plane
                .controllers
                .push(Some(Controllers::start(Arc::new(plane.client()), cfg)));
        }
        plane
    }

    /// Starts the masters and waits for a leader; no controllers run.
    pub fn store_only(name: &str) -> ControlPlane {
        let dir = scratch().join(name);
        let members: Vec<Member> = (1..=3)
            .map(|id| Member {
                id,
                peer_addr: format!("127.0.0.1:{}", free_port()),
                client_addr: format!("127.0.0.1:{}", free_port()),
                learner: false,
            })
            .collect();
        let mut plane = ControlPlane {
            members: members.clone(),
            masters: Vec::new(),
            controllers: Vec::new(),
            dir,
            controller_config: ControllerConfig::default(),
        };
        for m in &members {
            let cfg = MasterConfig::new(
                m.id,
                42,
                plane.dir.join(format!("m{}", m.id)),
                members.clone(),
            );
            plane
                .masters
                .push(Some(Master::start(cfg).expect("master starts")));
        }
        plane.wait_leader(Duration::from_secs(20));
        plane
    }

    /// A client of every master.
    pub fn client(&self) -> Client {
        let endpoints: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.client_addr.as_str())
            .collect();
        let mut cfg = ClientConfig::new(&endpoints);
        cfg.timeout = Duration::from_secs(10);
        Client::with_config(cfg).expect("client connects")
    }

    /// A registry over a fresh client.
    pub fn registry(&self) -> Registry {
        Registry::new(Arc::new(self.client()))
    }

    /// The leader master's id, once there is one.
    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.masters.iter().flatten().find(|m| m.is_leader()) {
                return m.id();
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops master `id` and the controllers beside it, as if its host died.
    pub fn kill_master(&mut self, id: u64) {
        let i = (id - 1) as usize;
        if let Some(c) = self.controllers.get_mut(i).and_then(Option::take) {
            c.stop();
        }
        self.masters[i].take();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for c in self.controllers.iter_mut() {
            if let Some(c) = c.take() {
                c.stop();
            }
        }
    }
}

/// The state directory of node `name` of `plane`: each test's nodes have their own, since a
/// starting node agent removes the sandboxes it finds there.
pub fn node_dir(plane: &ControlPlane, name: &str) -> PathBuf {
    plane.dir.join("nodes").join(name)
}

/// Starts a node agent that runs namespace sandboxes without a pod network.
pub fn node_agent(plane: &ControlPlane, name: &str, max_pods: u32) -> NodeAgent {
    let mut cfg = NodeAgentConfig::new(
        name,
        node_dir(plane, name),
        agent_binary(),
        scratch().to_path_buf(),
    );
    cfg.image_dir = image_dir();
    cfg.max_pods = max_pods;
    cfg.runtime_classes = Some(vec![RuntimeClass::Namespaces]);
    cfg.lease_ttl = Duration::from_secs(2);
    NodeAgent::start(Arc::new(plane.client()), cfg).expect("node agent starts")
}

/// Parses one manifest.
pub fn object(yaml: &str) -> Object {
    parse_manifests(yaml, "test")
        .expect("test manifest is valid")
        .remove(0)
}

/// A pod running `command` in busybox.
pub fn pod_yaml(name: &str, labels: &str, restart: &str, command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{{labels}}}}}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [/bin/sh, -c, '{command}']\n"
    )
}

/// Reads pod `name` in the default namespace.
pub fn pod(registry: &Registry, name: &str) -> Option<Pod> {
    match registry.get(Kind::Pod, "default", name) {
        Ok(Object::Pod(p)) => Some(p),
        _ => None,
    }
}

/// Whether pod `name` in the default namespace is gone (a failed read is not "gone").
pub fn pod_gone(registry: &Registry, name: &str) -> bool {
    matches!(
        registry.get(Kind::Pod, "default", name),
        Err(podvisor_cluster::registry::RegistryError::NotFound { .. })
    )
}

/// Waits until `check` holds, polling every 100 ms, and panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
