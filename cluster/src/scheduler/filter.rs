//! Filters: each rules a node out for one pod, with the reason kube-scheduler would give.

use std::fmt;

use super::{ClusterView, topology_domain};
use crate::objects::{
    Node, Pod, TaintEffect, Toleration, TolerationOperator, parse_cpu_millis, parse_memory_bytes,
};

/// Why one node cannot take one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterFailure {
    /// The node's Ready condition does not hold.
    NotReady,
    /// The operator cordoned the node.
    Unschedulable,
    /// The node cannot provide the pod's sandbox isolation level.
    RuntimeClass(&'static str),
    /// The node lacks labels the pod's nodeSelector asks for.
    NodeSelector,
    /// A taint the pod does not tolerate.
    Taint(String),
    /// Not enough of a resource is left: `cpu`, `memory` or `pods`.
    Insufficient(&'static str),
    /// A pod the pod must keep away from runs in the node's domain.
    AntiAffinity,
    /// Placing the pod here would spread matching pods too unevenly.
    Spread,
}

impl fmt::Display for FilterFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterFailure::NotReady => f.write_str("node(s) were not ready"),
            FilterFailure::Unschedulable => f.write_str("node(s) were unschedulable"),
            FilterFailure::RuntimeClass(c) => write!(f, "node(s) didn't support runtime class {c}"),
            FilterFailure::NodeSelector => f.write_str("node(s) didn't match Pod's node selector"),
            FilterFailure::Taint(t) => write!(f, "node(s) had untolerated taint {{{t}}}"),
            FilterFailure::Insufficient(r) => write!(f, "Insufficient {r}"),
            FilterFailure::AntiAffinity => {
                f.write_str("node(s) didn't satisfy pod anti-affinity rules")
            }
            FilterFailure::Spread => {
                f.write_str("node(s) didn't match pod topology spread constraints")
            }
        }
    }
}

/// Checks whether `node` can take `pod`, given the pods already bound.
///
/// # Errors
/// The first filter that rules the node out.
pub fn filter(pod: &Pod, node: &Node, view: &ClusterView<'_>) -> Result<(), FilterFailure> {
    if !node.is_ready() {
        return Err(FilterFailure::NotReady);
    }
    if node.spec.unschedulable {
        return Err(FilterFailure::Unschedulable);
    }
    let class = pod
        .spec
        .runtime_class_name
        .unwrap_or(view.default_runtime_class);
    if !node.status.runtime_classes.contains(&class) {
        return Err(FilterFailure::RuntimeClass(class.as_str()));
    }
    if !pod
        .spec
        .node_selector
        .iter()
        .all(|(k, v)| node.metadata.labels.get(k) == Some(v))
    {
        return Err(FilterFailure::NodeSelector);
    }
    for taint in &node.spec.taints {
        if taint.effect == TaintEffect::PreferNoSchedule {
            continue;
        }
        if !pod
            .spec
            .tolerations
            .iter()
            .any(|t| tolerates(t, &taint.key, &taint.value, taint.effect))
        {
            return Err(FilterFailure::Taint(format!(
                "{}={}",
                taint.key, taint.value
            )));
        }
    }
    fits(pod, node, view)?;
    anti_affinity(pod, node, view)?;
    spread(pod, node, view)
}

fn tolerates(t: &Toleration, key: &str, value: &str, effect: TaintEffect) -> bool {
    if t.effect.is_some_and(|e| e != effect) {
        return false;
    }
    match t.operator {
        TolerationOperator::Exists => t.key.is_empty() || t.key == key,
        TolerationOperator::Equal => t.key == key && t.value == value,
    }
}

fn fits(pod: &Pod, node: &Node, view: &ClusterView<'_>) -> Result<(), FilterFailure> {
    let alloc = &node.status.allocatable;
    let on_node: Vec<&Pod> = view.pods_on(&node.metadata.name).collect();
    if let Some(max) = alloc.get("pods").and_then(|p| p.parse::<usize>().ok())
        && on_node.len() + 1 > max
    {
        return Err(FilterFailure::Insufficient("pods"));
    }
    let cpu_cap = alloc.get("cpu").and_then(|c| parse_cpu_millis(c).ok());
    let used_cpu: u64 = on_node.iter().map(|p| p.cpu_request_millis()).sum();
    if let Some(cap) = cpu_cap
        && used_cpu + pod.cpu_request_millis() > cap
    {
        return Err(FilterFailure::Insufficient("cpu"));
    }
    let mem_cap = alloc.get("memory").and_then(|m| parse_memory_bytes(m).ok());
    let used_mem: u64 = on_node.iter().map(|p| p.memory_request_bytes()).sum();
    if let Some(cap) = mem_cap
        && used_mem + pod.memory_request_bytes() > cap
    {
        return Err(FilterFailure::Insufficient("memory"));
    }
    Ok(())
}

fn anti_affinity(pod: &Pod, node: &Node, view: &ClusterView<'_>) -> Result<(), FilterFailure> {
    let Some(affinity) = &pod.spec.affinity else {
        return Ok(());
    };
    for term in &affinity.pod_anti_affinity {
        let Some(domain) = topology_domain(node, &term.topology_key) else {
            continue;
        };
        let clash = view.bound_pods.iter().any(|other| {
            other.metadata.namespace == pod.metadata.namespace
                && other.metadata.name != pod.metadata.name
                && term.label_selector.matches(&other.metadata.labels)
                && view
                    .nodes
                    .iter()
                    .find(|n| n.metadata.name == other.spec.node_name)
                    .and_then(|n| topology_domain(n, &term.topology_key))
                    == Some(domain)
        });
        if clash {
            return Err(FilterFailure::AntiAffinity);
        }
    }
    Ok(())
}

fn spread(pod: &Pod, node: &Node, view: &ClusterView<'_>) -> Result<(), FilterFailure> {
    for c in &pod.spec.topology_spread_constraints {
        let Some(domain) = topology_domain(node, &c.topology_key) else {
            return Err(FilterFailure::Spread);
        };
        let mut counts: std::collections::BTreeMap<&str, u32> = view
            .nodes
            .iter()
            .filter(|n| n.is_ready() && !n.spec.unschedulable)
            .filter_map(|n| topology_domain(n, &c.topology_key))
            .map(|d| (d, 0))
            .collect();
        for other in view.bound_pods {
            if other.metadata.namespace != pod.metadata.namespace
                || !c.label_selector.matches(&other.metadata.labels)
            {
                continue;
            }
            let d = view
                .nodes
                .iter()
                .find(|n| n.metadata.name == other.spec.node_name)
                .and_then(|n| topology_domain(n, &c.topology_key));
            if let Some(d) = d
                && let Some(count) = counts.get_mut(d)
            {
                *count += 1;
            }
        }
        let min = counts.values().copied().min().unwrap_or(0);
        let here = counts.get(domain).copied().unwrap_or(0);
        if here + 1 > min + c.max_skew {
            return Err(FilterFailure::Spread);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{
        LabelSelector, PodAffinity, PodAntiAffinityTerm, RuntimeClass, Taint,
        TopologySpreadConstraint,
    };
    use crate::scheduler::tests::{node, pod};
    use crate::scheduler::{ClusterView, schedule};

    fn labelled(name: &str, app: &str) -> Pod {
        let mut p = pod(name, "100m", "16Mi");
        p.metadata.labels.insert("app".into(), app.into());
        p
    }

    #[test]
    fn test_anti_affinity_spreads_replicas_over_nodes() {
        let nodes = [
            node("a", "4", "4Gi", 10),
            node("b", "4", "4Gi", 10),
            node("c", "4", "4Gi", 10),
        ];
        let mut bound = Vec::new();
        for i in 0..3 {
            let mut p = labelled(&format!("web-{i}"), "web");
            p.spec.affinity = Some(PodAffinity {
                pod_anti_affinity: vec![PodAntiAffinityTerm {
                    label_selector: LabelSelector {
                        match_labels: [("app".to_string(), "web".to_string())].into(),
                    },
                    topology_key: "kubernetes.io/hostname".into(),
                }],
            });
            let view = ClusterView {
                nodes: &nodes,
                bound_pods: &bound,
                default_runtime_class: RuntimeClass::Namespaces,
            };
            let chosen = schedule(&p, &view).expect("a node is free");
            p.spec.node_name = chosen;
            bound.push(p.clone());
            if i == 2 {
                // A fourth replica has nowhere to go.
                let mut extra = p.clone();
                extra.metadata.name = "web-3".into();
                extra.spec.node_name.clear();
                let view = ClusterView {
                    nodes: &nodes,
                    bound_pods: &bound,
                    default_runtime_class: RuntimeClass::Namespaces,
                };
                let err = schedule(&extra, &view).expect_err("anti-affinity blocks");
                assert!(err.to_string().contains("anti-affinity"), "{err}");
            }
        }
        let mut used: Vec<_> = bound.iter().map(|p| p.spec.node_name.clone()).collect();
        used.sort();
        assert_eq!(used, ["a", "b", "c"]);
    }

    #[test]
    fn test_spread_constraint_keeps_skew_within_bound() {
        let nodes = [node("a", "4", "4Gi", 10), node("b", "4", "4Gi", 10)];
        let mut on_a = labelled("x", "db");
        on_a.spec.node_name = "a".into();
        let bound = [on_a];
        let mut p = labelled("y", "db");
        p.spec
            .topology_spread_constraints
            .push(TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                label_selector: LabelSelector {
                    match_labels: [("app".to_string(), "db".to_string())].into(),
                },
            });
        let view = ClusterView {
            nodes: &nodes,
            bound_pods: &bound,
            default_runtime_class: RuntimeClass::Namespaces,
        };
        assert_eq!(filter(&p, &nodes[0], &view), Err(FilterFailure::Spread));
        assert_eq!(filter(&p, &nodes[1], &view), Ok(()));
    }

    #[test]
    fn test_runtime_class_no_node_offers_is_named() {
        let nodes = [node("a", "4", "4Gi", 10)];
        let mut p = pod("vm-pod", "100m", "16Mi");
        p.spec.runtime_class_name = Some(RuntimeClass::Microvm);
        let view = ClusterView {
            nodes: &nodes,
            bound_pods: &[],
            default_runtime_class: RuntimeClass::Namespaces,
        };
        let err = schedule(&p, &view).expect_err("no micro-VM node");
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: 1 node(s) didn't support runtime class microvm"
        );
    }

    #[test]
    fn test_taints_need_tolerations_and_pod_count_is_capped() {
        let mut tainted = node("a", "4", "4Gi", 1);
        tainted.spec.taints.push(Taint {
            key: "dedicated".into(),
            value: "db".into(),
            effect: TaintEffect::NoSchedule,
        });
        let nodes = [tainted];
        let view = ClusterView {
            nodes: &nodes,
            bound_pods: &[],
            default_runtime_class: RuntimeClass::Namespaces,
        };
        let mut p = pod("p", "100m", "16Mi");
        assert!(matches!(
            filter(&p, &nodes[0], &view),
            Err(FilterFailure::Taint(_))
        ));
        p.spec.tolerations.push(Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Equal,
            value: "db".into(),
            effect: None,
        });
        assert_eq!(filter(&p, &nodes[0], &view), Ok(()));
        let mut other = pod("q", "100m", "16Mi");
        other.spec.node_name = "a".into();
        let bound = [other];
        let view = ClusterView {
            nodes: &nodes,
            bound_pods: &bound,
            default_runtime_class: RuntimeClass::Namespaces,
        };
        assert_eq!(
            filter(&p, &nodes[0], &view),
            Err(FilterFailure::Insufficient("pods"))
        );
    }
}
