//! [`Sandbox`]: one pod's sandbox, whichever backend runs it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podvisor_agent::cgroup::Cgroup;
use podvisor_agent::protocol::{
    ContainerSpec, ContainerStats, ExitStatus, Limits, MAX_CHUNK_LEN, ProcessRef, ProcessSpec,
    Reply, Request, Stream,
};

use crate::backend::{Backend, GuestConfig, Instance, MicroVmBackend, NamespaceBackend};
use crate::client::{AgentClient, OutputSink, ProcessEvent};
use crate::image::{self, ImageSource};
use crate::logs::{LogFollower, LogPolicy, LogWriter};
use crate::network::{self, NetworkConfig, SandboxNetwork};
use crate::{Isolation, SandboxError};

/// How long the agent has to end the sandbox when asked.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to create a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The sandbox's name, unique on the node (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// The isolation level.
    pub isolation: Isolation,
    /// Where sandboxes keep their state: `<state_dir>/<id>/` holds container roots and logs.
    pub state_dir: PathBuf,
    /// The static agent binary (namespace backend).
    pub agent: PathBuf,
    /// The cgroup under which the sandbox's group is made; `None` for the caller's own.
    pub cgroup_parent: Option<Cgroup>,
    /// The sandbox's network; `None` leaves it with loopback only.
    pub network: Option<NetworkConfig>,
    /// Bounds of container logs.
    pub logs: LogPolicy,
    /// The guest image (micro-VM backend).
    pub guest: Option<GuestConfig>,
}

impl SandboxConfig {
    /// A configuration with default logs, no network and the caller's cgroup as parent.
    pub fn new(id: &str, isolation: Isolation, state_dir: PathBuf, agent: PathBuf) -> Self {
        Self {
            id: id.to_owned(),
            isolation,
            state_dir,
            agent,
            cgroup_parent: None,
            network: None,
            logs: LogPolicy::default(),
            guest: None,
        }
    }

    /// `<state_dir>/<id>`.
    pub fn sandbox_dir(&self) -> PathBuf {
        self.state_dir.join(&self.id)
    }
}

/// A container to create in a sandbox.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The container's name, unique in the sandbox.
    pub name: String,
    /// Where its root comes from.
    pub image: ImageSource,
    /// Host name; empty means the container's name.
    pub hostname: String,
    /// Its process. Empty `args`, `env`, `cwd` or `user` take the image's values.
    pub process: ProcessSpec,
    /// Resource limits.
    pub limits: Limits,
}

impl ContainerConfig {
    /// A container running the image's defaults.
    pub fn new(name: &str, image: ImageSource) -> Self {
        Self {
            name: name.to_owned(),
            image,
            hostname: String::new(),
            process: ProcessSpec::default(),
            limits: Limits::default(),
        }
    }
}

/// Whether `s` may name a sandbox or a container: 1 to 128 ASCII letters, digits, `-`, `_` and
/// `.`, and not `.` or `..`, so it is safe as a path component.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Per-container log writers, fed by the agent connection.
type Logs = Arc<Mutex<HashMap<String, LogWriter>>>;

/// A running sandbox.
pub struct Sandbox {
    id: String,
    dir: PathBuf,
    client: AgentClient,
    /// Taken once, by teardown; behind a lock so that a `Sandbox` can be shared across threads.
    instance: Mutex<Option<Box<dyn Instance>>>,
    network: Option<SandboxNetwork>,
    logs: Logs,
    log_policy: LogPolicy,
    owned_roots: Mutex<HashMap<String, PathBuf>>,
}

impl Sandbox {
    /// The backend for an isolation level, as `config` sets it up.
    pub fn backend(config: &SandboxConfig) -> Box<dyn Backend> {
        match config.isolation {
            Isolation::Namespaces => Box::new(NamespaceBackend),
            Isolation::MicroVm => {
                let guest = config.guest.clone().unwrap_or_else(|| GuestConfig {
                    kernel: PathBuf::new(),
                    initramfs: PathBuf::new(),
                    modules: Vec::new(),
                    vcpus: 1,
                    memory_mib: 256,
                });
                Box::new(MicroVmBackend::new(guest))
            }
        }
    }

    /// Whether this host can run sandboxes of `isolation`.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Refused`] saying what the host lacks.
    pub fn check_host(config: &SandboxConfig) -> Result<(), SandboxError> {
        Self::backend(config).check_host()
    }

    /// Creates a sandbox: launches its agent, connects, and sets up its network.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Refused`] when the host cannot run the backend, or the failing step.
    /// Whatever was set up before the failure is torn down again.
    pub fn create(config: SandboxConfig) -> Result<Self, SandboxError> {
        Self::create_with_version(config, podvisor_agent::protocol::PROTOCOL_VERSION)
    }

    /// Like [`Sandbox::create`], announcing a given protocol version; for testing version checks.
    #[doc(hidden)]
    pub fn create_with_version(config: SandboxConfig, version: u32) -> Result<Self, SandboxError> {
        if !valid_name(&config.id) {
            return Err(SandboxError::InvalidName {
                what: "sandbox id",
                name: config.id.clone(),
            });
        }
        let backend = Self::backend(&config);
        backend.check_host()?;
        let dir = config.sandbox_dir();
        if dir.exists() {
            return Err(SandboxError::AlreadyExists {
                what: "sandbox",
                name: format!("{} ({})", config.id, dir.display()),
            });
        }
        fs::create_dir_all(dir.join("logs"))
            .map_err(|e| SandboxError::host("creating the sandbox directory", &dir, e))?;

        let result = Self::launch(&config, backend.as_ref(), version);
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn launch(
        config: &SandboxConfig,
        backend: &dyn Backend,
        version: u32,
    ) -> Result<Self, SandboxError> {
        let launched = backend.launch(config)?;
        let mut instance = launched.instance;
        let mut transport = launched.transport;

        let logs: Logs = Arc::default();
        let sink_logs = logs.clone();
        let sink: OutputSink = Arc::new(move |p: &ProcessRef, stream: Stream, data: &[u8]| {
            if p.exec_id.is_some() {
                return;
            }
            if let Some(w) = sink_logs.lock().expect("logs lock").get_mut(&p.container)
                && let Err(e) = w.write(stream, data)
            {
                tracing::warn!(container = %p.container, error = %e, "log write failed");
            }
        });
        let connected = transport
            .open()
            .map_err(|e| SandboxError::host("connecting to the agent", config.sandbox_dir(), e))
            .and_then(|(r, w)| AgentClient::connect_with_version(r, w, sink, version));
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                let _ = instance.terminate(Duration::ZERO);
                return Err(e);
            }
        };

        let mut network = None;
        if let Some(net) = &config.network {
            let setup = instance
                .netns()
                .ok_or_else(|| SandboxError::InvalidArgument("backend has no netns".into()))
                .and_then(|ns| Ok(network::setup(&config.id, net, &ns)?));
            match setup {
                Ok(n) => network = Some(n),
                Err(e) => {
                    let _ = client.request_timeout(Request::Shutdown, "shutdown", SHUTDOWN_TIMEOUT);
                    let _ = instance.terminate(SHUTDOWN_TIMEOUT);
                    return Err(e);
                }
            }
        }
        tracing::info!(sandbox = %config.id, isolation = %config.isolation, "sandbox created");
        Ok(Self {
            id: config.id.clone(),
            dir: config.sandbox_dir(),
            client,
            instance: Mutex::new(Some(instance)),
            network,
            logs,
            log_policy: config.logs,
            owned_roots: Mutex::new(HashMap::new()),
        })
    }

    /// The sandbox's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Creates a container; its process waits for [`Sandbox::start`].
    ///
    /// # Errors
    ///
    /// [`SandboxError::Image`] for a missing or bad image, or the agent's error.
    pub fn create_container(&self, config: &ContainerConfig) -> Result<(), SandboxError> {
        if !valid_name(&config.name) {
            return Err(SandboxError::InvalidName {
                what: "container name",
                name: config.name.clone(),
            });
        }
        let img_err = |source| SandboxError::Image {
            container: config.name.clone(),
            source,
        };
        let mut process = config.process.clone();
        let rootfs = match &config.image {
            ImageSource::Rootfs(dir) => {
                image::check_rootfs(dir).map_err(img_err)?;
                dir.clone()
            }
            ImageSource::OciLayout { dir, reference } => {
                let root = self.dir.join("rootfs").join(&config.name);
                if root.exists() {
                    return Err(SandboxError::AlreadyExists {
                        what: "container",
                        name: config.name.clone(),
                    });
                }
                let defaults =
                    image::unpack_oci_layout(dir, reference.as_deref(), &root).map_err(img_err)?;
                self.owned_roots
                    .lock()
                    .expect("roots lock")
                    .insert(config.name.clone(), root.clone());
                if process.args.is_empty() {
                    process.args = defaults.args;
                }
                if process.env.is_empty() {
                    process.env = defaults.env;
                }
                if process.cwd.is_empty() {
                    process.cwd = defaults.cwd;
                }
                if process.user.is_empty() {
                    process.user = defaults.user;
                }
                root
            }
        };

        let log_path = self.log_path(&config.name);
        let writer = LogWriter::open(log_path.clone(), self.log_policy)
            .map_err(|e| SandboxError::host("opening the container log", &log_path, e))?;
        self.logs
            .lock()
            .expect("logs lock")
            .insert(config.name.clone(), writer);

        let spec = ContainerSpec {
            id: config.name.clone(),
            rootfs: rootfs.display().to_string(),
            hostname: if config.hostname.is_empty() {
                config.name.clone()
            } else {
                config.hostname.clone()
            },
            process,
            limits: config.limits,
        };
        match self.client.request(Request::Create(spec)) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.forget_container(&config.name);
                Err(e)
            }
        }
    }

    /// Starts a created container's process.
    ///
    /// # Errors
    ///
    /// The agent's error (unknown container, already started, exec failure).
    pub fn start(&self, container: &str) -> Result<(), SandboxError> {
        self.client
            .request(Request::Start {
                container: container.to_owned(),
            })
            .map(drop)
    }

    /// Runs another process in a running container; see [`Sandbox::subscribe`] to see its output.
    ///
    /// # Errors
    ///
    /// The agent's error (container not running, exec id taken).
    pub fn exec(
        &self,
        container: &str,
        exec_id: &str,
        process: ProcessSpec,
    ) -> Result<ProcessRef, SandboxError> {
        let request = Request::Exec {
            container: container.to_owned(),
            exec_id: exec_id.to_owned(),
            process,
        };
        self.client.request(request)?;
        Ok(ProcessRef::exec(container, exec_id))
    }

    /// Subscribes to the output and exit of a process. Subscribe before starting it (or before
    /// exec) to see all of its output.
    pub fn subscribe(&self, process: &ProcessRef) -> std::sync::mpsc::Receiver<ProcessEvent> {
        self.client.subscribe(process)
    }

    /// Writes to a process's stdin (created with `stdin: true`).
    ///
    /// # Errors
    ///
    /// The agent's error (no such process, stdin closed).
    pub fn write_stdin(&self, process: &ProcessRef, data: &[u8]) -> Result<(), SandboxError> {
        for chunk in data.chunks(MAX_CHUNK_LEN) {
            let request = Request::Stdin {
                process: process.clone(),
                data: chunk.to_vec(),
            };
            self.client.request(request)?;
        }
        Ok(())
    }

    /// Closes a process's stdin.
    ///
    /// # Errors
    ///
    /// The agent's error.
    pub fn close_stdin(&self, process: &ProcessRef) -> Result<(), SandboxError> {
        self.client
            .request(Request::CloseStdin {
                process: process.clone(),
            })
            .map(drop)
    }

    /// Sends a signal to a process.
    ///
    /// # Errors
    ///
    /// The agent's error (no such process, not running).
    pub fn signal(&self, process: &ProcessRef, signal: i32) -> Result<(), SandboxError> {
        self.client
            .request(Request::Signal {
                process: process.clone(),
                signal,
            })
            .map(drop)
    }

    /// Waits until a process ends.
    ///
    /// # Errors
    ///
    /// The agent's error, or the connection's.
    pub fn wait(&self, process: &ProcessRef) -> Result<ExitStatus, SandboxError> {
        expect_exit(self.client.request(Request::Wait {
            process: process.clone(),
        })?)
    }

    /// CPU and memory use of a container.
    ///
    /// # Errors
    ///
    /// The agent's error.
    pub fn stats(&self, container: &str) -> Result<ContainerStats, SandboxError> {
        match self.client.request(Request::Stats {
            container: container.to_owned(),
        })? {
            Reply::Stats(s) => Ok(s),
            other => Err(SandboxError::Disconnected(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL to all of it after `grace`.
    ///
    /// # Errors
    ///
    /// The agent's error.
    pub fn stop(&self, container: &str, grace: Duration) -> Result<ExitStatus, SandboxError> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        expect_exit(self.client.request(Request::Stop {
            container: container.to_owned(),
            grace_ms,
        })?)
    }

    /// Removes a container: kills what is left and releases its cgroup, root and log writer.
    ///
    /// # Errors
    ///
    /// The agent's error.
    pub fn remove_container(&self, container: &str) -> Result<(), SandboxError> {
        self.client.request(Request::Destroy {
            container: container.to_owned(),
        })?;
        self.forget_container(container);
        Ok(())
    }

    fn forget_container(&self, container: &str) {
        self.logs.lock().expect("logs lock").remove(container);
        if let Some(root) = self
            .owned_roots
            .lock()
            .expect("roots lock")
            .remove(container)
        {
            let _ = fs::remove_dir_all(root);
        }
    }

    /// The log file of a container.
    pub fn log_path(&self, container: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{container}.log"))
    }

    /// Follows a container's log from its beginning.
    pub fn follow_log(&self, container: &str) -> LogFollower {
        LogFollower::new(&self.log_path(container))
    }

    /// Ends the sandbox: the agent kills every container and exits, then the backend releases
    /// the sandbox and the network is torn down. Logs and roots are removed with the sandbox
    /// directory.
    ///
    /// # Errors
    ///
    /// The first step that failed; the later steps still run.
    pub fn destroy(mut self) -> Result<(), SandboxError> {
        self.teardown(true)
    }

    fn teardown(&mut self, remove_dir: bool) -> Result<(), SandboxError> {
        let taken = self.instance.lock().expect("instance lock").take();
        let Some(mut instance) = taken else {
            return Ok(());
        };
        let mut first: Option<SandboxError> = None;
        let shutdown = self
            .client
            .request_timeout(Request::Shutdown, "shutdown", SHUTDOWN_TIMEOUT);
        if let Err(e) = shutdown
            && !matches!(e, SandboxError::Disconnected(_))
        {
            first.get_or_insert(e);
        }
        if let Err(e) = instance.terminate(SHUTDOWN_TIMEOUT) {
            first.get_or_insert(e);
        }
        self.client.join();
        if let Some(net) = self.network.take()
            && let Err(e) = net.teardown()
        {
            first.get_or_insert(e.into());
        }
        self.logs.lock().expect("logs lock").clear();
        if remove_dir && let Err(e) = fs::remove_dir_all(&self.dir) {
            first.get_or_insert(SandboxError::host(
                "removing the sandbox directory",
                &self.dir,
                e,
            ));
        }
        tracing::info!(sandbox = %self.id, "sandbox destroyed");
        first.map_or(Ok(()), Err)
    }

    /// The sandbox's directory on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.teardown(true);
    }
}

// The node agent drives one sandbox from several threads (a wait in one, an exec in another).
const _: () = {
    const fn check<T: Send + Sync>() {}
    check::<Sandbox>();
};

fn expect_exit(reply: Reply) -> Result<ExitStatus, SandboxError> {
    match reply {
        Reply::Exited(s) => Ok(s),
        other => Err(SandboxError::Disconnected(format!(
            "unexpected reply {other:?}"
        ))),
    }
}
