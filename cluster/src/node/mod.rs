//! The node agent, podvisor's Spherelet: it runs on every host and makes the pods and VMs bound
//! to its node so.
//!
//! It registers its Node with the host's capacity and the runtime classes the host can
//! provide, and keeps a store lease alive so the control plane knows it is there
//! ([`registration`]). A reconcile loop reads the pods and VMs bound to the node: each pod gets
//! a [`PodWorker`] that owns its sandbox, and each VirtualMachine is driven to its power state
//! through the VMM ([`vm_worker`]). Every change a worker reports is written to the object's
//! status with an optimistic update. Pods being deleted are stopped with their grace period;
//! the agent's finalizer on each pod keeps the object until the sandbox is gone. Container
//! logs and exec are served over HTTP ([`server`]) to callers of [`client`].
//!
//! When the agent restarts, sandboxes left by the previous run are cleaned up (their
//! processes died with the agent), and their pods are run again or, under restartPolicy Never,
//! marked Failed: a pod is never run twice at the same time.

pub mod client;
mod http;
mod pod_worker;
pub mod registration;
pub mod server;
mod status;
pub mod vm_worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use podvisor_store::Client;

pub use pod_worker::{
    LiveSandboxes, PodReport, PodWorker, SandboxSettings, SharedSandbox, resolve_image, sandbox_id,
};

use crate::controllers::lifecycle::SANDBOX_FINALIZER;
use crate::objects::{IpPool, Kind, Object, Pod, PodPhase, RuntimeClass, VirtualMachine};
use crate::registry::{Registry, RegistryError};

/// How a node agent runs.
#[derive(Debug, Clone)]
pub struct NodeAgentConfig {
    /// The node's name.
    pub name: String,
    /// Where sandboxes, VM consoles and the agent's records live.
    pub state_dir: PathBuf,
    /// The static podvisor agent binary.
    pub agent_binary: PathBuf,
    /// Where image names are resolved.
    pub image_dir: PathBuf,
    /// Where VM kernel names are resolved.
    pub kernel_dir: PathBuf,
    /// The pod bridge; `None` runs pods with loopback only.
    pub bridge: Option<String>,
    /// Where logs and exec are served.
    pub listen: SocketAddr,
    /// TTL of the node's lease.
    pub lease_ttl: Duration,
    /// Runtime classes to offer; `None` offers what the host probe finds.
    pub runtime_classes: Option<Vec<RuntimeClass>>,
    /// Pods the node takes at most.
    pub max_pods: u32,
    /// Labels of the node.
    pub labels: BTreeMap<String, String>,
    /// The guest image for micro-VM sandboxes.
    pub guest: Option<podvisor_sandbox::GuestConfig>,
}

impl NodeAgentConfig {
    /// A configuration with defaults for everything but the name and the directories.
    pub fn new(name: &str, state_dir: PathBuf, agent_binary: PathBuf, cache: PathBuf) -> Self {
        NodeAgentConfig {
            name: name.to_string(),
            state_dir,
            agent_binary,
            image_dir: cache.join("images"),
            kernel_dir: cache.join("kernel"),
            bridge: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            lease_ttl: Duration::from_secs(4),
            runtime_classes: None,
            max_pods: 32,
            labels: BTreeMap::new(),
            guest: None,
        }
    }
}

/// What went wrong starting a node agent.
#[derive(Debug, thiserror::Error)]
pub enum NodeAgentError {
    /// The node could not be registered.
    #[error("registering node {node}")]
    Register {
        /// The node.
        node: String,
        /// The cause.
        #[source]
        source: RegistryError,
    },
    /// A host resource could not be set up.
    #[error("{what}")]
    Host {
        /// What was being set up.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another live node agent holds the node's lease.
    #[error("node {node} is already run by another node agent, whose lease did not lapse")]
    NameInUse {
        /// The node.
        node: String,
    },
    /// The store failed.
    #[error("node agent store request failed")]
    Store(#[from] podvisor_store::StoreError),
}

/// A running node agent; stops its workers and the lease when stopped or dropped.
pub struct NodeAgent {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    address: SocketAddr,
}

impl NodeAgent {
    /// Takes the node's lease, registers the node and starts the agent's loops.
    ///
    /// While another agent of the same name holds the lease, this waits up to that lease's TTL
    /// (and a margin) for it to lapse, so an agent restarted after a crash takes over; a cleanly
    /// stopped agent gave its lease back, and a restart after it does not wait.
    ///
    /// # Errors
    /// [`NodeAgentError::NameInUse`] when another live agent runs the node; otherwise the node
    /// cannot be registered, the server cannot listen, or the state directory cannot be made.
    pub fn start(
        client: Arc<Client>,
        config: NodeAgentConfig,
    ) -> Result<NodeAgent, NodeAgentError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|source| NodeAgentError::Host {
            what: format!("creating state directory {}", config.state_dir.display()),
            source,
        })?;
        let registry = Registry::new(client.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let live: LiveSandboxes = Arc::new(Mutex::new(Default::default()));
        let server =
            server::Server::bind(&config, live.clone()).map_err(|source| NodeAgentError::Host {
                what: format!("listening on {}", config.listen),
                source,
            })?;
        let address = server.address();
        // The lease first: a second agent of the same name must not touch the Node.
        let lease = registration::LeaseKeeper::new(client.clone(), &config)?;
        if let Err(source) = registration::register(&registry, &config, address) {
            lease.release();
            return Err(NodeAgentError::Register {
                node: config.name.clone(),
                source,
            });
        }
        let mut threads = Vec::new();
        threads.push(spawn("node-lease", {
            let stop = stop.clone();
            move || lease.run(&stop)
        }));
        threads.push(spawn("node-server", {
            let stop = stop.clone();
            move || server.run(&stop)
        }));
        threads.push(spawn("node-agent", {
            let stop = stop.clone();
            move || Agent::new(registry, config, live, address).run(&stop)
        }));
        Ok(NodeAgent {
            stop,
            threads,
            address,
        })
    }

    /// Where logs and exec are served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops every pod and VM of this agent, releases the lease and returns.
    ///
    /// The pods' statuses are left as they were: their sandboxes end because the agent stops,
    /// not because they failed. The control plane sees the node's lease go, and the next agent
    /// started with this node's name and state directory runs the pods again.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Removes what a sandbox of an earlier run left: its processes and cgroup (under this
/// agent's own cgroup, where sandboxes are made), and its directory. Its network went with its
/// namespace when its last process died.
fn remove_stale_sandbox(dir: &std::path::Path) {
    let Some(id) = dir.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    if let Ok(cgroup) =
        podvisor_sandbox::Cgroup::current().and_then(|c| c.child(&format!("podvisor-{id}")))
    {
        cgroup.kill_all();
        let _ = cgroup.remove(Duration::from_secs(5));
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(sandbox = id, error = %e, "cannot remove a stale sandbox directory");
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    // The threads are the agent itself: without them it cannot run at all.
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("the node agent cannot run without its threads")
}

/// The reconcile loop's state.
struct Agent {
    registry: Registry,
    config: NodeAgentConfig,
    /// Where the server listens, as the Node shows it.
    address: SocketAddr,
    live: LiveSandboxes,
    workers: BTreeMap<String, (PodWorker, Pod)>,
    /// Pods whose workers stop only because the agent stops: nothing of theirs is written.
    shutting_down: std::collections::BTreeSet<String>,
    vms: BTreeMap<String, vm_worker::VmRunner>,
    reports: Receiver<PodReport>,
    report_tx: std::sync::mpsc::Sender<PodReport>,
    vm_reports: Receiver<vm_worker::VmReport>,
    vm_report_tx: std::sync::mpsc::Sender<vm_worker::VmReport>,
}

impl Agent {
    fn new(
        registry: Registry,
        config: NodeAgentConfig,
        live: LiveSandboxes,
        address: SocketAddr,
    ) -> Self {
        let (report_tx, reports) = channel();
        let (vm_report_tx, vm_reports) = channel();
        Agent {
            registry,
            config,
            address,
            live,
            workers: BTreeMap::new(),
            shutting_down: Default::default(),
            vms: BTreeMap::new(),
            reports,
            report_tx,
            vm_reports,
            vm_report_tx,
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        self.clean_stale_sandboxes();
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.reconcile() {
                tracing::debug!(node = %self.config.name, error = %e, "node reconcile failed; retrying");
            }
            self.write_reports(Duration::from_millis(300));
        }
        // The sandboxes end because the agent stops, not because the pods failed: their
        // statuses stay as they are, the lease given back tells the control plane, and the next
        // start runs the pods again. Pods already stopping for their deletion still finish it,
        // and what the workers reported before the stop is still written.
        self.write_reports(Duration::ZERO);
        for (uid, (worker, _)) in self.workers.iter_mut() {
            if !worker.is_stopping() {
                self.shutting_down.insert(uid.clone());
            }
            worker.stop(Duration::from_secs(2));
        }
        for runner in self.vms.values_mut() {
            runner.power_off();
        }
        while self.workers.values().any(|(w, _)| !w.is_finished()) {
            self.write_reports(Duration::from_millis(100));
        }
        self.write_reports(Duration::from_millis(10));
    }

    /// Sandboxes of an earlier run of this agent died with it: remove what they left.
    fn clean_stale_sandboxes(&mut self) {
        let dir = self.config.state_dir.join("sandboxes");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            tracing::info!(node = %self.config.name, sandbox = ?entry.file_name(), "removing a sandbox left by an earlier run");
            remove_stale_sandbox(&entry.path());
        }
    }

    /// Marks the node Ready again after the control plane saw its lease lapse (a long pause,
    /// or a failover of the masters while a renewal was in flight).
    fn reassert_ready(&self) -> Result<(), RegistryError> {
        let ready = match self.registry.get(Kind::Node, "", &self.config.name)? {
            Object::Node(n) => n.is_ready(),
            _ => true,
        };
        if !ready {
            tracing::info!(node = %self.config.name, "node was marked NotReady; registering again");
            registration::register(&self.registry, &self.config, self.address)?;
        }
        Ok(())
    }

    fn reconcile(&mut self) -> Result<(), RegistryError> {
        self.reassert_ready()?;
        let (objects, _) = self.registry.list(Kind::Pod, None)?;
        let pods: Vec<Pod> = objects
            .into_iter()
            .filter_map(|o| match o {
                Object::Pod(p) if p.spec.node_name == self.config.name => Some(p),
                _ => None,
            })
            .collect();
        let pools = self.pools()?;
        let by_uid: BTreeMap<&str, &Pod> =
            pods.iter().map(|p| (p.metadata.uid.as_str(), p)).collect();

        // Pods gone from the store or being deleted: stop their workers.
        for (uid, (worker, pod)) in self.workers.iter_mut() {
            let current = by_uid.get(uid.as_str());
            let deleting = current.is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            if deleting {
                let grace = pod.spec.termination_grace_period_seconds.unwrap_or(5);
                worker.stop(Duration::from_secs(grace));
            }
        }
        for pod in &pods {
            let uid = pod.metadata.uid.as_str();
            if self.workers.contains_key(uid) {
                continue;
            }
            let (ns, name) = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
            if pod.metadata.deletion_timestamp.is_some() {
                // Nothing runs for it here: let the deletion finish.
                self.remove_finalizer(&ns, &name);
                continue;
            }
            if pod.status.phase.is_terminal() || pod.status.pod_ip.is_empty() && !pools.is_empty() {
                continue;
            }
            if pod.status.phase == PodPhase::Running {
                // It ran under an earlier run of this agent, whose sandbox is gone.
                if self.mark_lost_if_never_restarts(pod) {
                    continue;
                }
            }
            if !pod
                .metadata
                .finalizers
                .iter()
                .any(|f| f == SANDBOX_FINALIZER)
            {
                let added = self.registry.modify(Kind::Pod, &ns, &name, |obj| {
                    let Object::Pod(p) = obj else { return false };
                    if p.metadata.uid != uid || p.metadata.deletion_timestamp.is_some() {
                        return false;
                    }
                    p.metadata.finalizers.push(SANDBOX_FINALIZER.into());
                    true
                });
                if added.is_err() {
                    continue;
                }
            }
            let network = pools
                .iter()
                .find(|p| p.metadata.name == pod.status.ip_pool)
                .and_then(|p| p.spec.gateway.map(|g| (p.prefix_length(), g)));
            let settings = SandboxSettings {
                state_dir: self.config.state_dir.join("sandboxes"),
                agent: self.config.agent_binary.clone(),
                image_dir: self.config.image_dir.clone(),
                bridge: self.config.bridge.clone(),
                guest: self.config.guest.clone(),
            };
            tracing::info!(node = %self.config.name, pod = %name, namespace = %ns, "starting pod");
            let worker = PodWorker::start(
                pod.clone(),
                settings,
                network,
                self.live.clone(),
                self.report_tx.clone(),
            );
            self.workers.insert(uid.to_string(), (worker, pod.clone()));
        }
        self.reconcile_vms()?;
        Ok(())
    }

    fn pools(&self) -> Result<Vec<IpPool>, RegistryError> {
        let (objects, _) = self.registry.list(Kind::IPPool, None)?;
        Ok(objects
            .into_iter()
            .filter_map(|o| match o {
                Object::IPPool(p) => Some(p),
                _ => None,
            })
            .collect())
    }

    /// A pod that was Running under an earlier agent run and must not restart is Failed now.
    fn mark_lost_if_never_restarts(&self, pod: &Pod) -> bool {
        if pod.spec.restart_policy != crate::objects::RestartPolicy::Never {
            return false;
        }
        let uid = pod.metadata.uid.clone();
        let _ = self.registry.modify(
            Kind::Pod,
            &pod.metadata.namespace,
            &pod.metadata.name,
            |obj| {
                let Object::Pod(p) = obj else { return false };
                if p.metadata.uid != uid {
                    return false;
                }
                p.status.phase = PodPhase::Failed;
                p.status.reason = "SandboxDied".into();
                p.status.message = "the node agent restarted and the pod's sandbox was gone".into();
                for c in &mut p.status.container_statuses {
                    if !matches!(c.state, crate::objects::ContainerState::Terminated { .. }) {
                        c.state = crate::objects::ContainerState::Terminated {
                            exit_code: 137,
                            signal: None,
                            reason: "SandboxDied".into(),
                            started_at: None,
                            finished_at: crate::objects::Timestamp::now(),
                        };
                    }
                }
                p.metadata.finalizers.retain(|f| f != SANDBOX_FINALIZER);
                true
            },
        );
        true
    }

    fn remove_finalizer(&self, ns: &str, name: &str) {
        let _ = self.registry.modify(Kind::Pod, ns, name, |obj| {
            let Object::Pod(p) = obj else { return false };
            let before = p.metadata.finalizers.len();
            p.metadata.finalizers.retain(|f| f != SANDBOX_FINALIZER);
            before != p.metadata.finalizers.len()
        });
    }

    /// Writes every report that arrives within `wait` to the pods' status.
    fn write_reports(&mut self, wait: Duration) {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            while let Ok(vm) = self.vm_reports.try_recv() {
                vm_worker::write_report(&self.registry, &vm);
            }
            let Ok(report) = self.reports.recv_timeout(left) else {
                return;
            };
            let Some((_, pod)) = self.workers.get(&report.uid) else {
                continue;
            };
            if self.shutting_down.contains(&report.uid) {
                if report.finished {
                    self.workers.remove(&report.uid);
                }
                continue;
            }
            let (ns, name) = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
            let uid = report.uid.clone();
            let result = self.registry.modify(Kind::Pod, &ns, &name, |obj| {
                let Object::Pod(p) = obj else { return false };
                if p.metadata.uid != uid {
                    return false;
                }
                let mut changed = false;
                if !report.finished
                    || !p.status.phase.is_terminal()
                    || p.status.container_statuses.is_empty()
                {
                    let keep_ip = std::mem::take(&mut p.status.pod_ip);
                    let keep_pool = std::mem::take(&mut p.status.ip_pool);
                    let conditions = std::mem::take(&mut p.status.conditions);
                    let before = p.status.clone();
                    p.status = report.status.clone();
                    p.status.pod_ip = keep_ip;
                    p.status.ip_pool = keep_pool;
                    p.status.conditions = conditions;
                    changed = before != p.status;
                }
                if report.finished {
                    let n = p.metadata.finalizers.len();
                    p.metadata.finalizers.retain(|f| f != SANDBOX_FINALIZER);
                    changed |= n != p.metadata.finalizers.len();
                }
                changed
            });
            match result {
                Ok(_) | Err(RegistryError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(pod = %name, error = %e, "cannot write pod status"),
            }
            if report.finished {
                self.workers.remove(&report.uid);
            }
        }
    }

    fn reconcile_vms(&mut self) -> Result<(), RegistryError> {
        let (objects, _) = self.registry.list(Kind::VirtualMachine, None)?;
        let vms: Vec<VirtualMachine> = objects
            .into_iter()
            .filter_map(|o| match o {
                Object::VirtualMachine(v) if v.spec.node_name == self.config.name => Some(v),
                _ => None,
            })
            .collect();
        let present: std::collections::BTreeSet<String> =
            vms.iter().map(|v| v.metadata.uid.clone()).collect();
        self.vms.retain(|uid, runner| {
            if present.contains(uid) {
                true
            } else {
                runner.power_off();
                false
            }
        });
        for vm in vms {
            let runner = self
                .vms
                .entry(vm.metadata.uid.clone())
                .or_insert_with(|| vm_worker::VmRunner::new(&vm, self.vm_report_tx.clone()));
            runner.reconcile(&vm, &self.config);
        }
        Ok(())
    }
}
