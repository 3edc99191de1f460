//! Scoring: among the nodes that can take a pod, prefer the least allocated, so that load
//! spreads and one node's loss takes the fewest pods with it.

use super::ClusterView;
use crate::objects::{Node, Pod, parse_cpu_millis, parse_memory_bytes};

/// A score from 0 to 200 for placing `pod` on `node`: 100 each for the share of CPU and of
/// memory left free after placing it. Higher is better.
pub fn score(pod: &Pod, node: &Node, view: &ClusterView<'_>) -> i64 {
    let alloc = &node.status.allocatable;
    let on_node: Vec<&Pod> = view.pods_on(&node.metadata.name).collect();
    let free_share = |cap: Option<u64>, used: u64| -> i64 {
        match cap {
            Some(cap) if cap > 0 => {
                let free = cap.saturating_sub(used);
                i64::try_from(free.saturating_mul(100) / cap).unwrap_or(0)
            }
            _ => 0,
        }
    };
    let cpu_cap = alloc.get("cpu").and_then(|c| parse_cpu_millis(c).ok());
    let cpu_used: u64 =
        on_node.iter().map(|p| p.cpu_request_millis()).sum::<u64>() + pod.cpu_request_millis();
    let mem_cap = alloc.get("memory").and_then(|m| parse_memory_bytes(m).ok());
    let mem_used: u64 = on_node
        .iter()
        .map(|p| p.memory_request_bytes())
        .sum::<u64>()
        + pod.memory_request_bytes();
    free_share(cpu_cap, cpu_used) + free_share(mem_cap, mem_used)
}
