//! The controllers: the loops that make the stored state so, run by the master that holds the
//! controller lease.
//!
//! Every master runs a [`Controllers`] instance; they elect one of themselves through a lease
//! on `/controllers/leader`, the way kube-controller-manager elects its leader. The holder runs
//! level-triggered reconcile passes: each pass reads the objects and acts on what it sees, so a
//! pass interrupted by a crash or a change of leader is simply done again by the next one.
//! Safety never rests on being the only leader: every write compares the revision it read, so
//! a deposed leader's late writes fail instead of doing harm.
//!
//! - [`lifecycle`]: nodes whose lease lapsed become NotReady; after a grace period their pods
//!   are marked Failed (NodeLost) and pods with an owner are rescheduled.
//! - [`binding`]: the scheduler binds pods, and VMs, to nodes with a compare-and-swap.
//! - [`addresses`]: IPAM for pods and VMs, and VIPs for services.
//! - [`compaction`]: the store's history is compacted on an interval, as kube-apiserver does.

pub mod addresses;
pub mod binding;
pub mod compaction;
pub mod lifecycle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podvisor_store::Client;
use podvisor_store::api::{
    Compare, CompareOp, CompareTarget, KeyRange, PutRequest, RangeRequest, Txn, TxnOp,
};

use crate::objects::{Kind, Object, RuntimeClass};
use crate::registry::{Registry, RegistryError};

/// The key whose holder runs the controllers.
pub const LEADER_KEY: &str = "/controllers/leader";

/// How the controllers behave.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Who this instance is, written to the leader key (a master's name).
    pub identity: String,
    /// TTL of the controller lease; a dead leader is replaced after at most this long.
    pub lease_ttl: Duration,
    /// Time between reconcile passes.
    pub resync: Duration,
    /// How long a node may be NotReady before its pods are marked Failed (NodeLost).
    pub node_grace: Duration,
    /// The runtime class of pods that name none, when every node offers it; else the other.
    pub preferred_runtime_class: RuntimeClass,
    /// How often the leader compacts the store's history, up to the revision of one interval
    /// earlier; zero never compacts.
    pub compaction_interval: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            identity: "controllers".to_string(),
            lease_ttl: Duration::from_secs(3),
            resync: Duration::from_millis(250),
            node_grace: Duration::from_secs(10),
            preferred_runtime_class: RuntimeClass::Microvm,
            compaction_interval: Duration::from_secs(300),
        }
    }
}

/// What went wrong in a reconcile pass; the next pass tries again.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A registry read or write failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store failed.
    #[error("controller store request failed")]
    Store(#[from] podvisor_store::StoreError),
}

/// The running controllers of one master; stops them when dropped.
pub struct Controllers {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Controllers {
    /// Starts the election and, while this instance leads, the reconcile passes.
    pub fn start(client: Arc<Client>, config: ControllerConfig) -> Controllers {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("podvisor-controllers".into())
            .spawn(move || run(client, config, &flag))
            .map_err(|e| tracing::error!(error = %e, "cannot start the controller thread"))
            .ok();
        Controllers { stop, thread }
    }

    /// Stops the controllers and waits for the current pass to end.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(client: Arc<Client>, config: ControllerConfig, stop: &AtomicBool) {
    let registry = Registry::new(client.clone());
    let mut lifecycle = lifecycle::NodeLifecycle::default();
    let mut compactor = compaction::Compactor::new(config.compaction_interval);
    while !stop.load(Ordering::SeqCst) {
        let lease = match acquire(&client, &config) {
            Ok(Some(lease)) => lease,
            Ok(None) | Err(_) => {
                std::thread::sleep(config.resync.max(Duration::from_millis(200)));
                continue;
            }
        };
        tracing::info!(identity = %config.identity, lease, "leading the controllers");
        let keep_every = config.lease_ttl / 3;
        let mut kept = Instant::now();
        compactor.reset();
        while !stop.load(Ordering::SeqCst) {
            if kept.elapsed() >= keep_every {
                if client.lease_keep_alive(lease).is_err() {
                    tracing::warn!(identity = %config.identity, "lost the controller lease");
                    break;
                }
                kept = Instant::now();
            }
            if let Err(e) = reconcile(&registry, &config, &mut lifecycle) {
                tracing::debug!(error = %e, "reconcile pass failed; retrying");
            }
            if let Err(e) = compactor.tick(&client) {
                tracing::warn!(error = %e, "compacting the store failed; retrying next interval");
            }
            std::thread::sleep(config.resync);
        }
        let _ = client.lease_revoke(lease);
    }
}

/// Takes the leader key if it is free; returns the lease that holds it.
fn acquire(client: &Client, config: &ControllerConfig) -> Result<Option<u64>, ControllerError> {
    let held = client.range(RangeRequest {
        range: KeyRange::key(LEADER_KEY.as_bytes()),
        ..RangeRequest::default()
    })?;
    if !held.kvs.is_empty() {
        return Ok(None);
    }
    let grant = client.lease_grant(config.lease_ttl.as_secs().max(1))?;
    let resp = client.txn(Txn {
        compares: vec![Compare {
            key: LEADER_KEY.as_bytes().to_vec(),
            op: CompareOp::Equal,
            target: CompareTarget::CreateRevision(0),
        }],
        success: vec![TxnOp::Put(PutRequest {
            key: LEADER_KEY.as_bytes().to_vec(),
            value: config.identity.as_bytes().to_vec(),
            lease: grant.id,
            prev_kv: false,
        })],
        failure: Vec::new(),
    })?;
    if resp.succeeded {
        Ok(Some(grant.id))
    } else {
        let _ = client.lease_revoke(grant.id);
        Ok(None)
    }
}

/// Everything one pass reads.
pub(crate) struct Snapshot {
    pub nodes: Vec<crate::objects::Node>,
    pub pods: Vec<crate::objects::Pod>,
    pub vms: Vec<crate::objects::VirtualMachine>,
    pub pools: Vec<crate::objects::IpPool>,
    pub services: Vec<crate::objects::Service>,
    /// The earliest store revision among the reads: anything written after it may belong to
    /// objects this snapshot does not show.
    pub revision: u64,
}

impl Snapshot {
    fn read(registry: &Registry) -> Result<Snapshot, ControllerError> {
        let mut revision = u64::MAX;
        let mut list = |kind| -> Result<Vec<Object>, ControllerError> {
            let (objects, rev) = registry.list(kind, None)?;
            revision = revision.min(rev);
            Ok(objects)
        };
        let nodes = list(Kind::Node)?;
        let pods = list(Kind::Pod)?;
        let vms = list(Kind::VirtualMachine)?;
        let pools = list(Kind::IPPool)?;
        let services = list(Kind::Service)?;
        Ok(Snapshot {
            nodes: nodes
                .into_iter()
                .filter_map(|o| match o {
                    Object::Node(n) => Some(n),
                    _ => None,
                })
                .collect(),
            pods: pods
                .into_iter()
                .filter_map(|o| match o {
                    Object::Pod(p) => Some(p),
                    _ => None,
                })
                .collect(),
            vms: vms
                .into_iter()
                .filter_map(|o| match o {
                    Object::VirtualMachine(v) => Some(v),
                    _ => None,
                })
                .collect(),
            pools: pools
                .into_iter()
                .filter_map(|o| match o {
                    Object::IPPool(p) => Some(p),
                    _ => None,
                })
                .collect(),
            services: services
                .into_iter()
                .filter_map(|o| match o {
                    Object::Service(s) => Some(s),
                    _ => None,
                })
                .collect(),
            revision,
        })
    }
}

/// One reconcile pass over everything.
pub(crate) fn reconcile(
    registry: &Registry,
    config: &ControllerConfig,
    lifecycle: &mut lifecycle::NodeLifecycle,
) -> Result<(), ControllerError> {
    let snap = Snapshot::read(registry)?;
    lifecycle.reconcile(registry, config, &snap)?;
    let snap = Snapshot::read(registry)?;
    binding::reconcile(registry, config, &snap)?;
    let snap = Snapshot::read(registry)?;
    addresses::reconcile(registry, &snap)?;
    Ok(())
}
