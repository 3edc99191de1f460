//! Node lifecycle: a node is Ready while its agent renews its lease.
//!
//! A node agent holds a store lease and keeps the key `/leases/nodes/<node>` attached to it.
//! When the agent stops renewing, the store deletes the key as the lease expires; this
//! controller then turns the node's Ready condition to Unknown (NodeStatusUnknown). After the
//! grace period the node's pods that have not ended are marked Failed with reason NodeLost, as
//! kubelet-less pods are in Kubernetes, and pods that have an owner are rescheduled: unbound,
//! back to Pending, so the scheduler places them on a live node.

use std::time::{Duration, SystemTime};

use podvisor_store::api::{KeyRange, RangeRequest};

use super::{ControllerConfig, ControllerError, Snapshot};
use crate::objects::{Condition, ConditionStatus, Kind, Object, PodPhase, PodStatus, Timestamp};
use crate::registry::{Registry, RegistryError};

/// The key prefix under which node agents keep their lease-bound heartbeat keys.
pub const NODE_LEASE_PREFIX: &str = "/leases/nodes/";

/// The finalizer a node agent puts on pods whose sandbox it runs.
pub const SANDBOX_FINALIZER: &str = "podvisor.io/sandbox";

/// The node lifecycle controller.
#[derive(Debug, Default)]
pub struct NodeLifecycle {}

impl NodeLifecycle {
    pub(super) fn reconcile(
        &mut self,
        registry: &Registry,
        config: &ControllerConfig,
        snap: &Snapshot,
    ) -> Result<(), ControllerError> {
        let leases = registry.client().range(RangeRequest {
            range: KeyRange::prefix(NODE_LEASE_PREFIX.as_bytes().to_vec()),
            ..RangeRequest::default()
        })?;
        let alive: std::collections::BTreeSet<String> = leases
            .kvs
            .iter()
            .filter_map(|kv| std::str::from_utf8(&kv.key).ok())
            .filter_map(|k| k.strip_prefix(NODE_LEASE_PREFIX))
            .map(str::to_string)
            .collect();
        for node in &snap.nodes {
            let name = node.metadata.name.as_str();
            if alive.contains(name) {
                continue;
            }
            let ready = Condition::find(&node.status.conditions, "Ready");
            if ready.is_none_or(|c| c.status == ConditionStatus::True) {
                mark_unknown(registry, name)?;
                continue;
            }
            let since = ready.and_then(|c| c.last_transition_time).map(|t| t.0);
            let lapsed = since
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or(Duration::ZERO);
            if lapsed >= config.node_grace {
                fail_pods(registry, snap, name)?;
            }
        }
        Ok(())
    }
}

fn mark_unknown(registry: &Registry, node: &str) -> Result<(), RegistryError> {
    tracing::info!(
        node,
        "node agent stopped renewing its lease; node is NotReady"
    );
    registry
        .modify(Kind::Node, "", node, |obj| {
            let Object::Node(n) = obj else { return false };
            Condition::set(
                &mut n.status.conditions,
                Condition {
                    type_: "Ready".into(),
                    status: ConditionStatus::Unknown,
                    reason: "NodeStatusUnknown".into(),
                    message: "the node agent stopped renewing its lease".into(),
                    observed_generation: n.metadata.generation,
                    last_transition_time: None,
                },
            );
            true
        })
        .map(|_| ())
}

fn fail_pods(registry: &Registry, snap: &Snapshot, node: &str) -> Result<(), RegistryError> {
    for pod in snap.pods.iter().filter(|p| p.spec.node_name == node) {
        let (ns, name) = (pod.metadata.namespace.as_str(), pod.metadata.name.as_str());
        let owned = !pod.metadata.owner_references.is_empty();
        if pod.metadata.deletion_timestamp.is_some() {
            // Nobody is left to stop the sandbox: let the deletion finish.
            registry.modify(Kind::Pod, ns, name, |obj| {
                let Object::Pod(p) = obj else { return false };
                let before = p.metadata.finalizers.len();
                p.metadata.finalizers.retain(|f| f != SANDBOX_FINALIZER);
                p.metadata.finalizers.len() != before
            })?;
            continue;
        }
        if pod.status.phase.is_terminal() {
            continue;
        }
        tracing::info!(node, pod = name, owned, "node lost; failing its pod");
        registry.modify(Kind::Pod, ns, name, |obj| {
            let Object::Pod(p) = obj else { return false };
            if p.spec.node_name != node {
                return false;
            }
            p.metadata.finalizers.retain(|f| f != SANDBOX_FINALIZER);
            if owned {
                // Rescheduled: unbound and Pending again; its address is released by IPAM.
                p.spec.node_name.clear();
                p.status = PodStatus {
                    reason: "NodeLost".into(),
                    message: format!("rescheduled: node {node} was lost"),
                    ..PodStatus::default()
                };
            } else {
                p.status.phase = PodPhase::Failed;
                p.status.reason = "NodeLost".into();
                p.status.message = format!("node {node} which was running the pod is unresponsive");
                Condition::set(
                    &mut p.status.conditions,
                    Condition {
                        type_: "Ready".into(),
                        status: ConditionStatus::False,
                        reason: "NodeLost".into(),
                        message: String::new(),
                        observed_generation: p.metadata.generation,
                        last_transition_time: Some(Timestamp::now()),
                    },
                );
            }
            true
        })?;
    }
    Ok(())
}
