//! Registration: the node agent's Node object and the lease that says it is alive.
//!
//! The Node carries the host's capacity, what pods may use, the runtime classes the host can
//! provide (micro-VMs only where KVM is hardware-assisted) and the address of the agent's
//! server. The lease keeps `/leases/nodes/<node>` alive; the node lifecycle controller marks
//! the node NotReady when it lapses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use podvisor_store::Client;
use podvisor_store::api::PutRequest;

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

/// Keeps the node's lease alive, granting a new one (and marking the node Ready again) when
/// the old one lapsed.
pub struct LeaseKeeper {
    client: std::sync::Arc<Client>,
    node: String,
    ttl: Duration,
    lease: u64,
}

impl LeaseKeeper {
    /// Grants the lease and attaches the node's heartbeat key to it.
    ///
    /// # Errors
    /// Store failures.
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
        keeper.renew_grant()?;
        Ok(keeper)
    }

    fn renew_grant(&mut self) -> Result<(), NodeAgentError> {
        let grant = self.client.lease_grant(self.ttl.as_secs().max(1))?;
        self.client.put_with(PutRequest {
            key: format!("{NODE_LEASE_PREFIX}{}", self.node).into_bytes(),
            value: b"alive".to_vec(),
            lease: grant.id,
            prev_kv: false,
        })?;
        self.lease = grant.id;
        Ok(())
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
        let _ = self.client.lease_revoke(self.lease);
    }
}
