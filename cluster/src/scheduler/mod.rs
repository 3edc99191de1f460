//! The scheduler's decision: which node a pending pod should run on.
//!
//! This is the pure part of scheduling, as in kube-scheduler: [`filter`] drops the nodes that
//! cannot take the pod and says why, [`score`] ranks the rest, and [`schedule`] combines them.
//! Binding the pod, with a compare-and-swap so that capacity holds under churn and across a
//! change of the controller's leader, is the controller's job.

mod filter;
mod score;

use std::collections::BTreeMap;

use crate::objects::{Node, Pod, RuntimeClass};

pub use filter::{FilterFailure, filter};
pub use score::score;

/// What the scheduler knows of the cluster when it places one pod.
#[derive(Debug, Clone, Copy)]
pub struct ClusterView<'a> {
    /// Every node.
    pub nodes: &'a [Node],
    /// Every pod bound to a node and not yet ended.
    pub bound_pods: &'a [Pod],
    /// The runtime class of pods that name none.
    pub default_runtime_class: RuntimeClass,
}

impl ClusterView<'_> {
    /// The pods bound to `node`.
    pub fn pods_on<'b>(&'b self, node: &'b str) -> impl Iterator<Item = &'b Pod> + 'b {
        self.bound_pods
            .iter()
            .filter(move |p| p.spec.node_name == node)
    }
}

/// Why a pod could not be placed: each reason with how many nodes gave it, in the words
/// kube-scheduler uses ("0/3 nodes are available: 2 Insufficient memory, 1 ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", unschedulable_message(*.nodes, .reasons))]
pub struct Unschedulable {
    /// How many nodes were considered.
    pub nodes: usize,
    /// Each reason and how many nodes it ruled out.
    pub reasons: BTreeMap<String, usize>,
}

fn unschedulable_message(nodes: usize, reasons: &BTreeMap<String, usize>) -> String {
    if nodes == 0 {
        return "0/0 nodes are available: no node is registered".to_string();
    }
    let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!("0/{nodes} nodes are available: {}", parts.join(", "))
}

/// Chooses the node for `pod`: the best-scoring node that passes every filter, ties broken by
/// name so that every master decides alike.
///
/// # Errors
/// [`Unschedulable`] with every node's reason when no node can take the pod.
pub fn schedule(pod: &Pod, view: &ClusterView<'_>) -> Result<String, Unschedulable> {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(i64, &str)> = None;
    for node in view.nodes {
        match filter(pod, node, view) {
            Ok(()) => {
                let s = score(pod, node, view);
                let better = match best {
                    None => true,
                    Some((bs, bn)) => s > bs || (s == bs && node.metadata.name.as_str() < bn),
                };
                if better {
                    best = Some((s, &node.metadata.name));
                }
            }
            Err(failure) => *reasons.entry(failure.to_string()).or_default() += 1,
        }
    }
    best.map(|(_, name)| name.to_string()).ok_or(Unschedulable {
        nodes: view.nodes.len(),
        reasons,
    })
}

/// The topology domain `node` belongs to under `key`: its name for `kubernetes.io/hostname`,
/// else the value of that label, if it has one.
pub(crate) fn topology_domain<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    if key == "kubernetes.io/hostname" {
        return Some(node.metadata.name.as_str());
    }
    node.metadata.labels.get(key).map(String::as_str)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::objects::{Condition, ConditionStatus, Container, ObjectMeta, ResourceRequirements};

    pub(crate) fn node(name: &str, cpu: &str, memory: &str, pods: u32) -> Node {
        let mut n = Node {
            metadata: ObjectMeta::named(name),
            ..Node::default()
        };
        n.status.allocatable.insert("cpu".into(), cpu.into());
        n.status.allocatable.insert("memory".into(), memory.into());
        n.status.allocatable.insert("pods".into(), pods.to_string());
        n.status.runtime_classes = vec![RuntimeClass::Namespaces];
        n.status.conditions.push(Condition {
            type_: "Ready".into(),
            status: ConditionStatus::True,
            reason: "AgentReady".into(),
            message: String::new(),
            observed_generation: 0,
            last_transition_time: None,
        });
        n
    }

    pub(crate) fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
        let mut resources = ResourceRequirements::default();
        resources.requests.insert("cpu".into(), cpu.into());
        resources.requests.insert("memory".into(), memory.into());
        let mut p = Pod {
            metadata: ObjectMeta::named(name),
            ..Pod::default()
        };
        p.metadata.namespace = "default".into();
        p.spec.runtime_class_name = Some(RuntimeClass::Namespaces);
        p.spec.containers.push(Container {
            name: "c".into(),
            image: "/rootfs".into(),
            resources,
            ..Container::default()
        });
        p
    }

    fn bound(mut p: Pod, node: &str) -> Pod {
        p.spec.node_name = node.into();
        p
    }

    #[test]
    fn test_schedule_prefers_least_allocated_node() {
        let nodes = [node("a", "2", "1Gi", 10), node("b", "2", "1Gi", 10)];
        let bound_pods = [bound(pod("x", "1", "256Mi"), "a")];
        let view = ClusterView {
            nodes: &nodes,
            bound_pods: &bound_pods,
            default_runtime_class: RuntimeClass::Namespaces,
        };
        assert_eq!(
            schedule(&pod("y", "500m", "128Mi"), &view),
            Ok("b".to_string())
        );
    }

    #[test]
    fn test_schedule_fails_when_nothing_fits_and_counts_reasons() {
        let nodes = [node("a", "1", "1Gi", 10), node("b", "4", "64Mi", 10)];
        let view = ClusterView {
            nodes: &nodes,
            bound_pods: &[],
            default_runtime_class: RuntimeClass::Namespaces,
        };
        let err = schedule(&pod("big", "2", "512Mi"), &view).expect_err("does not fit");
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory"
        );
    }
}
