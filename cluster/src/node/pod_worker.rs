//! The pod worker: one thread per pod that owns the pod's sandbox.
//!
//! It creates the sandbox and the containers, watches every container's exit, restarts them as
//! the pod's restartPolicy says (with a doubling back-off, as kubelet does), and reports each
//! change of state to the node agent, which writes it to the pod's status. Asked to stop, it
//! stops every container with the grace period, SIGTERM then SIGKILL, and destroys the
//! sandbox. A sandbox that dies under the pod ends every container with reason
//! `SandboxDied` and a non-zero code, so the pod can never be reported Succeeded.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podvisor_sandbox::{
    ContainerConfig, ExitStatus, ImageSource, Isolation, Limits, NetworkConfig, ProcessEvent,
    ProcessRef, Sandbox, SandboxConfig,
};

use super::status::{self, ContainerRun};
use crate::objects::{Pod, PodPhase, PodStatus, RestartPolicy, RuntimeClass, Timestamp};

/// How the node runs sandboxes; the same for every pod of the node.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Where sandboxes keep their state.
    pub state_dir: PathBuf,
    /// The static agent binary.
    pub agent: PathBuf,
    /// Where image names are resolved: `<image_dir>/<name>`.
    pub image_dir: PathBuf,
    /// The node's pod bridge; `None` runs pods with loopback only.
    pub bridge: Option<String>,
    /// The guest image for micro-VM sandboxes.
    pub guest: Option<podvisor_sandbox::GuestConfig>,
}

/// The sandboxes that run now, by pod uid, for exec.
pub type LiveSandboxes = Arc<Mutex<HashMap<String, SharedSandbox>>>;

/// A sandbox shared by its pod worker and the exec requests into it.
pub type SharedSandbox = Arc<Sandbox>;

/// A change of a pod's state, for the node agent to write.
#[derive(Debug, Clone)]
pub struct PodReport {
    /// The pod's uid.
    pub uid: String,
    /// The status to write (phase, start time, container statuses, reason).
    pub status: PodStatus,
    /// Set when the worker ended: the sandbox is gone.
    pub finished: bool,
}

enum Msg {
    Stop(Duration),
    Exited(String, ExitStatus),
    Lost(String),
}

/// The handle of one pod's worker.
pub struct PodWorker {
    /// The pod's uid.
    pub uid: String,
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    stopping: bool,
}

impl PodWorker {
    /// Starts the worker for `pod`, whose status already carries its address.
    pub fn start(
        pod: Pod,
        settings: SandboxSettings,
        network: Option<(u8, std::net::Ipv4Addr)>,
        live: LiveSandboxes,
        reports: Sender<PodReport>,
    ) -> PodWorker {
        let (tx, rx) = channel();
        let uid = pod.metadata.uid.clone();
        let events = tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pod-{}", pod.metadata.name))
            .spawn(move || {
                let mut w = Worker::new(pod, settings, network, live, reports, events);
                w.run(&rx);
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start a pod worker thread"))
            .ok();
        PodWorker {
            uid,
            tx,
            thread,
            stopping: false,
        }
    }

    /// Asks the worker to stop the pod with `grace`, then destroy the sandbox; returns at once.
    pub fn stop(&mut self, grace: Duration) {
        if !self.stopping {
            self.stopping = true;
            let _ = self.tx.send(Msg::Stop(grace));
        }
    }

    /// Whether the worker was asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether the worker thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for PodWorker {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    pod: Pod,
    settings: SandboxSettings,
    /// The pod network's prefix length and gateway.
    network: Option<(u8, std::net::Ipv4Addr)>,
    live: LiveSandboxes,
    reports: Sender<PodReport>,
    events: Sender<Msg>,
    sandbox: Option<SharedSandbox>,
    runs: BTreeMap<String, ContainerRun>,
    /// When each container that waits for a restart may start again.
    restart_at: BTreeMap<String, Instant>,
    start_time: Option<Timestamp>,
    failure: Option<(String, String)>,
}

impl Worker {
    fn new(
        pod: Pod,
        settings: SandboxSettings,
        network: Option<(u8, std::net::Ipv4Addr)>,
        live: LiveSandboxes,
        reports: Sender<PodReport>,
        events: Sender<Msg>,
    ) -> Self {
        let runs = pod
            .spec
            .containers
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    ContainerRun::waiting(&c.name, "ContainerCreating"),
                )
            })
            .collect();
        Worker {
            pod,
            settings,
            network,
            live,
            reports,
            events,
            sandbox: None,
            runs,
            restart_at: BTreeMap::new(),
            start_time: None,
            failure: None,
        }
    }

    fn run(&mut self, rx: &Receiver<Msg>) {
        self.report(false);
        if let Err(e) = self.create_sandbox() {
            tracing::warn!(pod = %self.pod.metadata.name, error = %e, "sandbox creation failed");
            self.failure = Some(("SandboxCreationFailed".into(), e));
            for run in self.runs.values_mut() {
                run.fail_to_start("SandboxCreationFailed");
            }
            self.report(false);
            // Wait to be stopped; the pod stays Failed.
            while let Ok(msg) = rx.recv() {
                if let Msg::Stop(_) = msg {
                    break;
                }
            }
            self.report(true);
            return;
        }
        self.start_time = Some(Timestamp::now());
        let names: Vec<String> = self.runs.keys().cloned().collect();
        for name in &names {
            self.start_container(name);
        }
        self.report(false);
        loop {
            let wait = self
                .restart_at
                .values()
                .min()
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(wait) {
                Ok(Msg::Stop(grace)) => {
                    self.stop_all(grace);
                    self.report(true);
                    return;
                }
                Ok(Msg::Exited(name, exit)) => self.on_exit(&name, Some(exit)),
                Ok(Msg::Lost(name)) => self.on_exit(&name, None),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop_all(Duration::ZERO);
                    return;
                }
            }
            let due: Vec<String> = self
                .restart_at
                .iter()
                .filter(|(_, t)| **t <= Instant::now())
                .map(|(n, _)| n.clone())
                .collect();
            for name in due {
                self.restart_at.remove(&name);
                self.restart_container(&name);
            }
            self.report(false);
        }
    }

    fn create_sandbox(&mut self) -> Result<(), String> {
        let isolation = match self
            .pod
            .spec
            .runtime_class_name
            .unwrap_or(RuntimeClass::Namespaces)
        {
            RuntimeClass::Microvm => Isolation::MicroVm,
            RuntimeClass::Namespaces => Isolation::Namespaces,
        };
        let mut config = SandboxConfig::new(
            &sandbox_id(&self.pod),
            isolation,
            self.settings.state_dir.clone(),
            self.settings.agent.clone(),
        );
        config.guest = self.settings.guest.clone();
        if let (Some(bridge), Ok(address), Some((prefix_len, gateway))) = (
            &self.settings.bridge,
            self.pod.status.pod_ip.parse(),
            self.network,
        ) {
            config.network = Some(NetworkConfig {
                bridge: bridge.clone(),
                address,
                prefix_len,
                gateway,
                host_netns: None,
            });
        }
        let sandbox = Arc::new(Sandbox::create(config).map_err(|e| error_chain(&e))?);
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.pod.metadata.uid.clone(), sandbox.clone());
        self.sandbox = Some(sandbox);
        Ok(())
    }

    fn container_config(&self, name: &str) -> Option<ContainerConfig> {
        let c = self.pod.spec.containers.iter().find(|c| c.name == name)?;
        let mut config =
            ContainerConfig::new(name, resolve_image(&self.settings.image_dir, &c.image));
        config.hostname = if self.pod.spec.hostname.is_empty() {
            self.pod.metadata.name.clone()
        } else {
            self.pod.spec.hostname.clone()
        };
        config.process.args = c.command.iter().chain(c.args.iter()).cloned().collect();
        config.process.env = c
            .env
            .iter()
            .map(|e| format!("{}={}", e.name, e.value))
            .collect();
        config.process.cwd = c.working_dir.clone();
        config.limits = Limits {
            memory_bytes: c.resources.memory_limit_bytes(),
            cpu_millis: c.resources.cpu_limit_millis(),
        };
        Some(config)
    }

    fn start_container(&mut self, name: &str) {
        let Some(config) = self.container_config(name) else {
            return;
        };
        let Some(sandbox) = &self.sandbox else { return };
        let process = ProcessRef::main(name);
        let started = sandbox.create_container(&config).and_then(|()| {
            let events = sandbox.subscribe(&process);
            sandbox.start(name).map(|()| events)
        });
        let Some(run) = self.runs.get_mut(name) else {
            return;
        };
        match started {
            Ok(events) => {
                run.running();
                let tx = self.events.clone();
                let container = name.to_string();
                // Forward the container's exit; a closed stream without one means the sandbox
                // died.
                let _ = std::thread::Builder::new()
                    .name(format!("exit-{name}"))
                    .spawn(move || {
                        for ev in events.iter() {
                            if let ProcessEvent::Exited(status) = ev {
                                let _ = tx.send(Msg::Exited(container, status));
                                return;
                            }
                        }
                        let _ = tx.send(Msg::Lost(container));
                    });
            }
            Err(e) => {
                tracing::warn!(pod = %self.pod.metadata.name, container = name, error = %error_chain(&e), "container failed to start");
                run.fail_to_start(&format!("CreateContainerError: {}", error_chain(&e)));
                // This run never started, so the restartPolicy does not apply: kubelet tries
                // again under every policy, and a pod none of whose containers started stays
                // Pending.
                self.back_off(name);
            }
        }
    }

    fn restart_container(&mut self, name: &str) {
        if let Some(sandbox) = &self.sandbox {
            let _ = sandbox.remove_container(name);
        }
        if let Some(run) = self.runs.get_mut(name) {
            run.restart_count += 1;
        }
        self.start_container(name);
    }

    fn on_exit(&mut self, name: &str, exit: Option<ExitStatus>) {
        let Some(run) = self.runs.get_mut(name) else {
            return;
        };
        if !run.is_running() {
            return;
        }
        let succeeded = match exit {
            Some(status) => run.terminated(status),
            None => {
                run.sandbox_died();
                false
            }
        };
        let sandbox_alive = exit.is_some();
        tracing::info!(pod = %self.pod.metadata.name, container = name, succeeded, "container ended");
        if sandbox_alive {
            self.schedule_restart(name, succeeded);
        } else {
            self.failure = Some((
                "SandboxDied".into(),
                "the pod's sandbox ended unexpectedly".into(),
            ));
            for run in self.runs.values_mut() {
                if run.is_running() {
                    run.sandbox_died();
                }
            }
            self.restart_at.clear();
        }
    }

    fn schedule_restart(&mut self, name: &str, succeeded: bool) {
        let restart = match self.pod.spec.restart_policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !succeeded,
            RestartPolicy::Never => false,
        };
        if restart {
            self.back_off(name);
        }
    }

    /// Starts the container again after a back-off that doubles with each restart.
    fn back_off(&mut self, name: &str) {
        let count = self.runs.get(name).map_or(0, |r| r.restart_count);
        let backoff = Duration::from_millis(500u64.saturating_mul(1 << count.min(6)))
            .min(Duration::from_secs(30));
        self.restart_at
            .insert(name.to_string(), Instant::now() + backoff);
    }

    fn stop_all(&mut self, grace: Duration) {
        self.restart_at.clear();
        let Some(sandbox) = self.sandbox.take() else {
            return;
        };
        for (name, run) in self.runs.iter_mut() {
            if run.is_running() {
                match sandbox.stop(name, grace) {
                    Ok(status) => {
                        run.terminated(status);
                    }
                    Err(_) => run.sandbox_died(),
                }
            }
        }
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.pod.metadata.uid);
        // An exec still running holds the sandbox a little longer; the last holder tears it
        // down when it lets go.
        let mut sandbox = sandbox;
        for _ in 0..50 {
            match Arc::try_unwrap(sandbox) {
                Ok(owned) => {
                    if let Err(e) = owned.destroy() {
                        tracing::warn!(pod = %self.pod.metadata.name, error = %error_chain(&e), "sandbox teardown was incomplete");
                    }
                    return;
                }
                Err(shared) => {
                    sandbox = shared;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn report(&self, finished: bool) {
        let runs: Vec<&ContainerRun> = self.runs.values().collect();
        let will_restart = !self.restart_at.is_empty();
        let phase = status::pod_phase(&runs, will_restart, self.failure.is_some());
        let (reason, message) = self.failure.clone().unwrap_or_default();
        let status = PodStatus {
            phase,
            reason: if phase == PodPhase::Failed {
                reason
            } else {
                String::new()
            },
            message: if phase == PodPhase::Failed {
                message
            } else {
                String::new()
            },
            start_time: self.start_time,
            container_statuses: runs.iter().map(|r| r.status()).collect(),
            ..PodStatus::default()
        };
        let _ = self.reports.send(PodReport {
            uid: self.pod.metadata.uid.clone(),
            status,
            finished,
        });
    }
}

/// The sandbox id of a pod: unique on the node, stable across agent restarts.
pub fn sandbox_id(pod: &Pod) -> String {
    let uid: String = pod
        .metadata
        .uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    format!("{}_{}_{uid}", pod.metadata.namespace, pod.metadata.name)
}

/// An image reference as the sandbox takes it: an absolute path is used as it is (an OCI
/// layout when it holds `index.json`, else a root filesystem); a name is looked up in the
/// node's image directory.
pub fn resolve_image(image_dir: &std::path::Path, image: &str) -> ImageSource {
    let path = if image.starts_with('/') {
        PathBuf::from(image)
    } else {
        image_dir.join(image)
    };
    if path.join("index.json").is_file() {
        ImageSource::OciLayout {
            dir: path,
            reference: None,
        }
    } else {
        ImageSource::Rootfs(path)
    }
}

/// An error with its causes, one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
