//! Binding: the scheduler's decisions written to the store so that no node is over-committed.
//!
//! A bind writes the pod with its node and, in the same transaction, bumps the node's binding
//! key `/scheduling/nodes/<node>`. The transaction compares that key's revision with the one
//! read before the pods were listed: if any other scheduler (a deposed leader, say) bound a pod
//! to the node in between, the compare fails and nothing is written, so the capacity check is
//! always made against every pod that is bound. Pods being deleted still count until their
//! sandbox is gone.

use std::collections::BTreeMap;

use podvisor_store::api::{Compare, KeyRange, PutRequest, RangeRequest, Txn, TxnOp};

use super::{ControllerConfig, ControllerError, Snapshot};
use crate::objects::{
    Condition, ConditionStatus, Node, Object, Pod, PodPhase, RuntimeClass, Timestamp,
};
use crate::registry::{self, Registry};
use crate::scheduler::{ClusterView, schedule};

/// The key prefix of the per-node binding counters.
pub const BINDING_PREFIX: &str = "/scheduling/nodes/";

pub(super) fn reconcile(
    registry: &Registry,
    config: &ControllerConfig,
    snap: &Snapshot,
) -> Result<(), ControllerError> {
    let pending: Vec<&Pod> = snap
        .pods
        .iter()
        .filter(|p| {
            p.spec.node_name.is_empty()
                && p.metadata.deletion_timestamp.is_none()
                && !p.status.phase.is_terminal()
        })
        .collect();
    if !pending.is_empty() {
        schedule_pods(registry, config, snap, &pending)?;
    }
    bind_vms(registry, snap)?;
    Ok(())
}

/// The runtime class of pods that name none: the preferred one if any ready node offers it,
/// else namespaces.
pub fn default_runtime_class(nodes: &[Node], preferred: RuntimeClass) -> RuntimeClass {
    if nodes
        .iter()
        .any(|n| n.is_ready() && n.status.runtime_classes.contains(&preferred))
    {
        preferred
    } else {
        RuntimeClass::Namespaces
    }
}

fn schedule_pods(
    registry: &Registry,
    config: &ControllerConfig,
    snap: &Snapshot,
    pending: &[&Pod],
) -> Result<(), ControllerError> {
    let client = registry.client();
    // The binding counters first, the pods after: every bind the counters reflect is in
    // the pod list.
    let counters = client.range(RangeRequest {
        range: KeyRange::prefix(BINDING_PREFIX.as_bytes().to_vec()),
        ..RangeRequest::default()
    })?;
    let mut seen: BTreeMap<String, u64> = counters
        .kvs
        .iter()
        .filter_map(|kv| {
            let key = std::str::from_utf8(&kv.key).ok()?;
            Some((
                key.strip_prefix(BINDING_PREFIX)?.to_string(),
                kv.mod_revision,
            ))
        })
        .collect();
    let (objects, _) = registry.list(crate::objects::Kind::Pod, None)?;
    let mut bound: Vec<Pod> = objects
        .into_iter()
        .filter_map(|o| match o {
            Object::Pod(p) if !p.spec.node_name.is_empty() && !p.status.phase.is_terminal() => {
                Some(p)
            }
            _ => None,
        })
        .collect();
    let default_class = default_runtime_class(&snap.nodes, config.preferred_runtime_class);
    for pod in pending {
        let view = ClusterView {
            nodes: &snap.nodes,
            bound_pods: &bound,
            default_runtime_class: default_class,
        };
        let mut pod = (*pod).clone();
        match schedule(&pod, &view) {
            Ok(node) => {
                let counter_key = format!("{BINDING_PREFIX}{node}");
                let counter_rev = seen.get(&node).copied().unwrap_or(0);
                pod.spec.node_name = node.clone();
                if pod.spec.runtime_class_name.is_none() {
                    pod.spec.runtime_class_name = Some(default_class);
                }
                Condition::set(
                    &mut pod.status.conditions,
                    scheduled(true, "", "", pod.metadata.generation),
                );
                pod.status.reason.clear();
                pod.status.message.clear();
                let obj = Object::Pod(pod.clone());
                let resp = client.txn(Txn {
                    compares: vec![
                        registry::unchanged(&obj),
                        Compare::mod_revision_equals(counter_key.clone().into_bytes(), counter_rev),
                    ],
                    success: vec![
                        registry::put_op(&obj),
                        TxnOp::Put(PutRequest {
                            key: counter_key.into_bytes(),
                            value: pod.metadata.name.clone().into_bytes(),
                            ..PutRequest::default()
                        }),
                    ],
                    failure: Vec::new(),
                })?;
                if !resp.succeeded {
                    // Someone else bound to this node, or the pod changed: the next pass
                    // sees the new state.
                    tracing::debug!(pod = %pod.metadata.name, node, "bind lost a race; retrying next pass");
                    return Ok(());
                }
                tracing::info!(pod = %pod.metadata.name, namespace = %pod.metadata.namespace, node, "bound pod");
                seen.insert(node, resp.revision);
                bound.push(pod);
            }
            Err(unschedulable) => {
                let message = unschedulable.to_string();
                let current = Condition::find(&pod.status.conditions, "PodScheduled");
                if current
                    .is_some_and(|c| c.message == message && c.status == ConditionStatus::False)
                {
                    continue;
                }
                Condition::set(
                    &mut pod.status.conditions,
                    scheduled(false, "Unschedulable", &message, pod.metadata.generation),
                );
                pod.status.phase = PodPhase::Pending;
                pod.status.reason = "Unschedulable".into();
                pod.status.message = message;
                // A conflict means the pod changed; the next pass looks again.
                let _ = registry.update(Object::Pod(pod));
            }
        }
    }
    Ok(())
}

fn scheduled(ok: bool, reason: &str, message: &str, generation: u64) -> Condition {
    Condition {
        type_: "PodScheduled".into(),
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Some(Timestamp::now()),
    }
}

/// Binds each unbound VM to the ready node with the fewest VMs.
fn bind_vms(registry: &Registry, snap: &Snapshot) -> Result<(), ControllerError> {
    let ready: Vec<&Node> = snap
        .nodes
        .iter()
        .filter(|n| n.is_ready() && !n.spec.unschedulable)
        .collect();
    if ready.is_empty() {
        return Ok(());
    }
    let mut load: BTreeMap<&str, usize> = ready
        .iter()
        .map(|n| (n.metadata.name.as_str(), 0))
        .collect();
    for vm in &snap.vms {
        if let Some(n) = load.get_mut(vm.spec.node_name.as_str()) {
            *n += 1;
        }
    }
    for vm in snap
        .vms
        .iter()
        .filter(|v| v.spec.node_name.is_empty() && v.metadata.deletion_timestamp.is_none())
    {
        let Some((&node, _)) = load.iter().min_by_key(|(name, n)| (**n, **name)) else {
            break;
        };
        let node = node.to_string();
        let mut vm = vm.clone();
        vm.spec.node_name = node.clone();
        if registry.update(Object::VirtualMachine(vm)).is_ok() {
            tracing::info!(node, "bound virtual machine");
            if let Some(n) = load.get_mut(node.as_str()) {
                *n += 1;
            }
        }
    }
    Ok(())
}
