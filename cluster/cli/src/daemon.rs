//! The long-running verbs: `podvisor master` (a store master and the controllers, in one
//! process) and `podvisor node-agent`.
//!
//! Both log to stderr and run until SIGTERM or SIGINT. A master then stops its controllers,
//! releasing their lease so another master takes over at once; a node agent stops its pods and
//! VMs with their grace periods and releases its node lease.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use podvisor_cluster::controllers::{ControllerConfig, Controllers};
use podvisor_cluster::node::{NodeAgent, NodeAgentConfig};
use podvisor_cluster::objects::RuntimeClass;
use podvisor_sandbox::{GuestConfig, initramfs};
use podvisor_store::api::Member;
use podvisor_store::{Client, Master, MasterConfig};

use crate::error::{CliError, Result, one_line};

/// `podvisor master`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  podvisor master --id 1 --data-dir /var/lib/podvisor/m1 \\\n    \
    --member 1=127.0.0.1:23800,127.0.0.1:23790 --member 2=127.0.0.1:23801,127.0.0.1:23791 \\\n    \
    --member 3=127.0.0.1:23802,127.0.0.1:23792"
)]
pub struct MasterArgs {
    /// This master's id (its raft node id, never 0).
    #[arg(long)]
    pub id: u64,
    /// Id shared by every member; peers and clients of another cluster are refused.
    #[arg(long, default_value_t = 1)]
    pub cluster_id: u64,
    /// Where the raft log and snapshots live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// One master as ID=PEER_ADDR,CLIENT_ADDR; repeat for each, this one included.
    #[arg(long = "member", required = true, value_parser = parse_member)]
    pub members: Vec<Member>,
    /// Address to listen on for peers, when it differs from this member's PEER_ADDR (which
    /// is what the others dial, as etcd's advertised URLs are): `0.0.0.0:23800`, say.
    #[arg(long)]
    pub listen_peer: Option<String>,
    /// Address to listen on for clients, when it differs from this member's CLIENT_ADDR.
    #[arg(long)]
    pub listen_client: Option<String>,
    /// Start empty and wait for the leader (a member added as a learner).
    #[arg(long)]
    pub join: bool,
    /// How long a NotReady node keeps its pods before they are marked Failed (NodeLost).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub node_grace: Duration,
    /// How often the controller leader compacts the store's history, keeping one interval of
    /// it; 0s never compacts.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub compaction_interval: Duration,
    /// TTL of the controller lease: a dead controller leader is replaced within it.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub controller_lease_ttl: Duration,
    /// Time between reconcile passes of the controllers.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub resync: Duration,
    /// Runtime class for pods that name none, when every node offers it.
    #[arg(long, default_value = "microvm", value_parser = parse_runtime_class)]
    pub preferred_runtime_class: RuntimeClass,
    /// Do not run the controllers in this process (a store-only master).
    #[arg(long)]
    pub no_controllers: bool,
    /// Applied entries between snapshots of the store.
    #[arg(long)]
    pub snapshot_entries: Option<u64>,
    /// Accept the test-only partition request from clients.
    #[arg(long, hide = true)]
    pub fault_injection: bool,
}

/// `podvisor node-agent`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  sudo podvisor node-agent --name node-1 \
    --endpoints 127.0.0.1:23790,127.0.0.1:23791,127.0.0.1:23792 \\\n    \
    --state-dir /var/lib/podvisor/node-1 --bridge pvbr0 --listen 127.0.0.1:23900")]
pub struct NodeAgentArgs {
    /// The node's name.
    #[arg(long)]
    pub name: String,
    /// Where sandboxes, VM consoles and the agent's records live.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The static podvisor agent binary (from vmm/agent/build-static).
    #[arg(long, env = "PODVISOR_AGENT")]
    pub agent: PathBuf,
    /// The artifact cache: images under images/, kernels under kernel/.
    #[arg(long, env = "PODVISOR_CACHE")]
    pub cache: Option<PathBuf>,
    /// The pod bridge, created with the pool's gateway address if missing; none runs pods with
    /// loopback only.
    #[arg(long)]
    pub bridge: Option<String>,
    /// Where logs and exec are served.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Pods the node takes at most.
    #[arg(long, default_value_t = 32)]
    pub max_pods: u32,
    /// Runtime classes to offer (comma-separated: microvm, namespaces) instead of what the host
    /// probe finds.
    #[arg(long, value_delimiter = ',', value_parser = parse_runtime_class)]
    pub runtime_class: Vec<RuntimeClass>,
    /// A node label KEY=VALUE; repeat for more.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// TTL of the node's lease.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
    /// The micro-VM guest kernel, with its `modules/` tree beside it (default: the cache's
    /// kernel/vmlinux). Used only where KVM is hardware-assisted.
    #[arg(long)]
    pub guest_kernel: Option<PathBuf>,
    /// vCPUs of each pod's micro-VM.
    #[arg(long, default_value_t = 1)]
    pub guest_vcpus: u8,
    /// Memory of each pod's micro-VM, in MiB.
    #[arg(long, default_value_t = 256)]
    pub guest_memory: u32,
}

fn parse_member(text: &str) -> std::result::Result<Member, String> {
    let bad = || format!("{text:?}: expected ID=PEER_ADDR,CLIENT_ADDR");
    let (id, addrs) = text.split_once('=').ok_or_else(bad)?;
    let (peer, client) = addrs.split_once(',').ok_or_else(bad)?;
    Ok(Member {
        id: id.parse().map_err(|_| bad())?,
        peer_addr: peer.to_string(),
        client_addr: client.to_string(),
        learner: false,
    })
}

/// Parses `microvm` or `namespaces`.
pub fn parse_runtime_class(text: &str) -> std::result::Result<RuntimeClass, String> {
    match text.to_ascii_lowercase().as_str() {
        "microvm" | "micro-vm" => Ok(RuntimeClass::Microvm),
        "namespaces" => Ok(RuntimeClass::Namespaces),
        other => Err(format!(
            "unknown runtime class {other:?} (microvm or namespaces)"
        )),
    }
}

fn parse_label(text: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Blocks SIGTERM and SIGINT in this thread and every thread started after, so that
/// [`wait_for_signal`] receives them.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t; these calls only write to it and
    // to this thread's signal mask.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Waits for one of the signals in `set`; returns its number.
fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is initialized and `sig` is a valid out-pointer for the call's duration.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .try_init();
}

/// Runs one master and the controllers until a stop signal.
///
/// # Errors
/// The master cannot start (its data directory fails its checks, an address is in use), or
/// its raft loop stopped on a fatal error.
pub fn run_master(args: MasterArgs) -> Result<()> {
    init_logging();
    let signals = block_stop_signals();
    let endpoints: Vec<String> = args.members.iter().map(|m| m.client_addr.clone()).collect();
    let mut cfg = MasterConfig::new(args.id, args.cluster_id, &args.data_dir, args.members);
    cfg.join = args.join;
    cfg.fault_injection = args.fault_injection;
    cfg.peer_listen = args.listen_peer;
    cfg.client_listen = args.listen_client;
    if let Some(n) = args.snapshot_entries {
        cfg.snapshot_entries = n;
        cfg.snapshot_trail = n / 5;
    }
    let id = cfg.id;
    let master = Master::start(cfg)
        .map_err(|e| CliError::Failed(format!("master {id} cannot start: {}", one_line(&e))))?;
    eprintln!(
        "podvisor master {id}: serving clients on {}",
        master.client_addr()
    );

    let controllers = if args.no_controllers {
        None
    } else {
        let client = Client::connect(&endpoints)?;
        let config = ControllerConfig {
            identity: format!("master-{id}"),
            lease_ttl: args.controller_lease_ttl,
            resync: args.resync,
            node_grace: args.node_grace,
            preferred_runtime_class: args.preferred_runtime_class,
            compaction_interval: args.compaction_interval,
        };
        Some(Controllers::start(Arc::new(client), config))
    };

    // The raft loop ends only on a fatal error; a signal ends the process from its own thread.
    let stopper = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let sig = wait_for_signal(&signals);
            eprintln!("podvisor master {id}: signal {sig}, stopping");
            // Stopping the controllers releases their lease, so another master takes over at
            // once; without a quorum that request cannot finish, so it gets two seconds.
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            if let Some(c) = controllers {
                let _ = std::thread::Builder::new()
                    .name("stop-controllers".into())
                    .spawn(move || {
                        c.stop();
                        let _ = done_tx.send(());
                    });
                let _ = done_rx.recv_timeout(Duration::from_secs(2));
            }
            std::process::exit(0);
        })
        .map_err(|e| CliError::io("starting the signal thread", e))?;
    let failure = master.wait();
    drop(stopper);
    match failure {
        Some(f) => Err(CliError::Failed(format!("master {id} stopped: {f}"))),
        None => Ok(()),
    }
}

/// Runs a node agent until a stop signal, then stops its pods.
///
/// # Errors
/// The node cannot be registered, or its server cannot listen.
pub fn run_node_agent(args: NodeAgentArgs, endpoints: Vec<String>) -> Result<()> {
    init_logging();
    let signals = block_stop_signals();
    if !args.agent.is_file() {
        return Err(CliError::Usage(format!(
            "agent binary {} does not exist (build it with vmm/agent/build-static)",
            args.agent.display()
        )));
    }
    let cache = args.cache.clone().unwrap_or_else(crate::default_cache);
    let guest = guest_image(&args, &cache);
    let mut config = NodeAgentConfig::new(&args.name, args.state_dir, args.agent, cache);
    config.guest = guest;
    config.bridge = args.bridge;
    config.listen = args.listen;
    config.max_pods = args.max_pods;
    config.lease_ttl = args.lease_ttl;
    if !args.runtime_class.is_empty() {
        config.runtime_classes = Some(args.runtime_class);
    }
    config.labels = args.labels.into_iter().collect::<BTreeMap<_, _>>();

    let client = Arc::new(Client::connect(&endpoints)?);
    let name = config.name.clone();
    let agent = NodeAgent::start(client, config)
        .map_err(|e| CliError::Failed(format!("node agent {name}: {}", one_line(&e))))?;
    eprintln!(
        "podvisor node-agent {name}: serving logs and exec on {}",
        agent.address()
    );
    let sig = wait_for_signal(&signals);
    eprintln!("podvisor node-agent {name}: signal {sig}, stopping its pods");
    agent.stop();
    Ok(())
}

/// The micro-VM guest (kernel and an initramfs holding the agent) where KVM is
/// hardware-assisted; `None` elsewhere, so the node offers namespaces only.
fn guest_image(args: &NodeAgentArgs, cache: &std::path::Path) -> Option<GuestConfig> {
    let probe = podvisor_vmm::probe(std::path::Path::new(podvisor_vmm::DEFAULT_KVM_PATH)).ok()?;
    if !probe.is_hardware_assisted() {
        eprintln!(
            "podvisor node-agent {}: pods run in namespaces: this host's KVM is {}",
            args.name,
            probe.mode.linux_guest_notes()
        );
        return None;
    }
    let kernel = args
        .guest_kernel
        .clone()
        .unwrap_or_else(|| cache.join("kernel/vmlinux"));
    let modules = kernel
        .parent()
        .map(|d| d.join("modules"))
        .unwrap_or_default();
    match initramfs::build(
        &args.agent,
        &modules,
        initramfs::GUEST_MODULES,
        &cache.join("guest"),
    ) {
        Ok(image) => Some(GuestConfig {
            kernel,
            initramfs: image.path,
            modules: image.modules,
            vcpus: args.guest_vcpus,
            memory_mib: args.guest_memory,
        }),
        Err(e) => {
            eprintln!(
                "podvisor node-agent {}: no micro-VM guest image ({}), pods run in namespaces",
                args.name,
                one_line(&e)
            );
            None
        }
    }
}
