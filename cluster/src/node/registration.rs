//! Registration: the node agent's Node object and the lease that says it is alive.
//!
//! The Node carries the host's capacity, what pods may use, the runtime classes the host can
//! provide (micro-VMs only where KVM is hardware-assisted) and the address of the agent's
//! server. The lease keeps `/leases/nodes/<node>` alive; the node lifecycle controller marks
//! the node NotReady when it lapses. The key is taken only when absent, so one live agent runs
//! each node: a second agent of the same name is refused once the first one's lease has had
//! its TTL to lapse and did not.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use podvisor_store::Client;
use podvisor_store::api::{Compare, CompareOp, CompareTarget, PutRequest, Txn, TxnOp};

use super::{NodeAgentConfig, NodeAgentError};
use crate::controllers::lifecycle::NODE_LEASE_PREFIX;
use crate::objects::{
    Condition, ConditionStatus, Kind, Node, Object, ObjectMeta, RuntimeClass, Timestamp,
};
use crate::registry::{Registry, RegistryError};

/// What the host can run, as the probes find it.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// CPUs.
    pub cpus: u32,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// What the host's KVM is: `hardware-assisted`, `software-paged` or `absent`.
    pub kvm: String,
    /// Runtime classes the host can provide.
    pub runtime_classes: Vec<RuntimeClass>,
}

/// Probes the host: CPUs, memory, KVM, and whether each sandbox isolation level works here.
pub fn probe_host(config: &NodeAgentConfig) -> HostFacts {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    let probe = podvisor_vmm::probe(std::path::Path::new(podvisor_vmm::DEFAULT_KVM_PATH));
    let (kvm, hardware) = match &probe {
        Ok(p) if p.is_hardware_assisted() => ("hardware-assisted".to_string(), true),
        Ok(_) => ("software-paged".to_string(), false),
        Err(_) => ("absent".to_string(), false),
    };
    let runtime_classes = config.runtime_classes.clone().unwrap_or_else(|| {
        let mut classes = vec![RuntimeClass::Namespaces];
        if hardware && config.guest.is_some() {
            classes.insert(0, RuntimeClass::Microvm);
        }
        classes
    });
    HostFacts {
        cpus,
        memory_bytes,
        kvm,
        runtime_classes,
    }
}

/// Creates the node's Node object, or updates its status, and marks it Ready.
///
/// # Errors
/// The registry's error when the store refuses.
pub fn register(
    registry: &Registry,
    config: &NodeAgentConfig,
    agent: SocketAddr,
) -> Result<(), RegistryError> {
    let facts = probe_host(config);
    let fill = |node: &mut Node| {
        for (k, v) in &config.labels {
            node.metadata.labels.insert(k.clone(), v.clone());
        }
        node.metadata
            .labels
            .insert("kubernetes.io/hostname".into(), config.name.clone());
        let status = &mut node.status;
        status.capacity.insert("cpu".into(), facts.cpus.to_string());
        status
            .capacity
            .insert("memory".into(), facts.memory_bytes.to_string());
        status
            .capacity
            .insert("pods".into(), config.max_pods.to_string());
        status.allocatable = status.capacity.clone();
        status.runtime_classes = facts.runtime_classes.clone();
        status.kvm = facts.kvm.clone();
        status.agent_address = agent.to_string();
        status.last_heartbeat_time = Some(Timestamp::now());
        Condition::set(
            &mut status.conditions,
            Condition {
                type_: "Ready".into(),
                status: ConditionStatus::True,
                reason: "NodeAgentReady".into(),
                message: format!("node agent is posting ready status; KVM is {}", facts.kvm),
                observed_generation: node.metadata.generation,
                last_transition_time: None,
            },
        );
    };
    match registry.modify(Kind::Node, "", &config.name, |obj| {
        let Object::Node(n) = obj else { return false };
        fill(n);
        true
    }) {
        Ok(_) => Ok(()),
        Err(RegistryError::NotFound { .. }) => {
            let mut node = Node {
                metadata: ObjectMeta::named(&config.name),
                ..Node::default()
            };
            fill(&mut node);
            registry.create(Object::Node(node)).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// How long past the holder's TTL a starting agent waits for the node's lease key to go: the
/// store's leader expires a lease on its next tick and through a raft proposal, so the key
/// outlives the deadline a little (longer across a failover of the masters).
const TAKEOVER_MARGIN: Duration = Duration::from_secs(2);

/// How often a starting agent looks whether the node's lease key went.
const TAKEOVER_POLL: Duration = Duration::from_millis(200);

/// Who holds the node's lease key.
enum Holder {
    /// This agent, with the lease it just granted.
    Us(u64),
    /// Another lease.
    Other(u64),
}

/// Keeps the node's lease alive, granting a new one (and marking the node Ready again) when
/// the old one lapsed. The lease key names one live agent per node: an agent takes it only
/// when it is absent.
pub struct LeaseKeeper {
    client: std::sync::Arc<Client>,
    node: String,
    ttl: Duration,
    lease: u64,
}

impl LeaseKeeper {
    /// Takes the node's lease key, waiting for one left by an earlier agent to lapse.
    ///
    /// # Errors
    /// [`NodeAgentError::NameInUse`] when the key is still held after the holder's TTL and a
    /// margin (its agent renews it, so it is alive); store failures.
    pub fn new(
        client: std::sync::Arc<Client>,
        config: &NodeAgentConfig,
    ) -> Result<Self, NodeAgentError> {
        let mut keeper = LeaseKeeper {
            client,
            node: config.name.clone(),
            ttl: config.lease_ttl,
            lease: 0,
        };
        let mut deadline = None;
        loop {
            match keeper.claim()? {
                Holder::Us(lease) => {
                    keeper.lease = lease;
                    return Ok(keeper);
                }
                Holder::Other(lease) => {
                    let deadline = *deadline.get_or_insert_with(|| {
                        let ttl = keeper
                            .client
                            .lease_time_to_live(lease)
                            .map_or(keeper.ttl, |t| Duration::from_secs(t.granted_ttl_secs));
                        tracing::info!(node = %keeper.node, ?ttl, "another node agent holds the node's lease; waiting for it to lapse");
                        Instant::now() + ttl.max(keeper.ttl) + TAKEOVER_MARGIN
                    });
                    if Instant::now() >= deadline {
                        return Err(NodeAgentError::NameInUse { node: keeper.node });
                    }
                    std::thread::sleep(TAKEOVER_POLL);
                }
            }
        }
    }

    fn key(&self) -> Vec<u8> {
        format!("{NODE_LEASE_PREFIX}{}", self.node).into_bytes()
    }

    /// Grants a lease and attaches the node's key to it if the key is absent.
    fn claim(&self) -> Result<Holder, NodeAgentError> {
        if let Some(kv) = self.client.get(self.key())? {
            return Ok(Holder::Other(kv.lease));
        }
        let grant = self.client.lease_grant(self.ttl.as_secs().max(1))?;
        let taken = self.client.txn(Txn {
            compares: vec![Compare {
                key: self.key(),
                op: CompareOp::Equal,
                target: CompareTarget::CreateRevision(0),
            }],
            success: vec![TxnOp::Put(PutRequest {
                key: self.key(),
                value: b"alive".to_vec(),
                lease: grant.id,
                prev_kv: false,
            })],
            failure: Vec::new(),
        });
        match taken {
            Ok(r) if r.succeeded => Ok(Holder::Us(grant.id)),
            other => {
                let _ = self.client.lease_revoke(grant.id);
                other?;
                // Another agent took the key between the read and the transaction.
                Ok(Holder::Other(0))
            }
        }
    }

    /// Takes the key again after this agent's lease lapsed, unless another agent took it.
    fn renew_grant(&mut self) -> Result<(), NodeAgentError> {
        match self.claim()? {
            Holder::Us(lease) => self.lease = lease,
            Holder::Other(lease) if lease == self.lease => {}
            Holder::Other(_) => {
                tracing::error!(node = %self.node, "another node agent took the node's lease while this one's lapsed");
            }
        }
        Ok(())
    }

    /// Gives the lease back at once, deleting the node's key.
    pub fn release(self) {
        let _ = self.client.lease_revoke(self.lease);
    }

    /// Renews the lease every third of its TTL until `stop`; then revokes it.
    pub fn run(mut self, stop: &AtomicBool) {
        let every = self.ttl / 3;
        let mut last = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() < every {
                continue;
            }
            last = Instant::now();
            if self.client.lease_keep_alive(self.lease).is_err() {
                tracing::warn!(node = %self.node, "node lease lapsed; granting a new one");
                if let Err(e) = self.renew_grant() {
                    tracing::warn!(node = %self.node, error = %e, "cannot renew the node lease");
                }
            }
        }
        self.release();
    }
}
