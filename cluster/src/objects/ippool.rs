//! The IPPool: addresses for workloads (pods and VMs) or for load-balancer frontends (Service
//! VIPs).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::meta::{Condition, ObjectMeta};
use super::validation::{FieldPath, ValidationErrors};

/// A pool of IPv4 addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpPool {
    /// Name; pools are cluster-scoped.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The addresses.
    pub spec: IpPoolSpec,
    /// How many are used.
    #[serde(default)]
    pub status: IpPoolStatus,
}

/// What a pool's addresses are for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolPurpose {
    /// Pod and VM addresses.
    #[default]
    Workload,
    /// Service VIPs.
    LoadBalancer,
}

/// An inclusive range of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRange {
    /// The first address.
    pub start: Ipv4Addr,
    /// The last address.
    pub end: Ipv4Addr,
}

/// A pool's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpPoolSpec {
    /// What the addresses are for.
    #[serde(default)]
    pub purpose: PoolPurpose,
    /// Networks whose host addresses (not the network and broadcast addresses) are in the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<Ipv4Net>,
    /// Ranges of addresses in the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<IpRange>,
    /// Addresses never handed out, such as a gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved: Vec<Ipv4Addr>,
    /// The gateway workloads route through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// The prefix length workloads get; the first CIDR's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<u8>,
}

/// How much of a pool is used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpPoolStatus {
    /// Addresses that may be handed out.
    #[serde(default)]
    pub usable: u64,
    /// Addresses handed out.
    #[serde(default)]
    pub allocated: u64,
    /// Conditions such as `Exhausted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Pools larger than this are refused: allocation walks the addresses.
const MAX_POOL_ADDRESSES: u64 = 1 << 16;

impl IpPool {
    pub(super) fn validate(&self, errs: &mut ValidationErrors) {
        self.metadata.validate(false, errs);
        let spec = FieldPath::root("spec");
        if self.spec.cidrs.is_empty() && self.spec.ranges.is_empty() {
            errs.push(
                spec.child("cidrs"),
                "a pool needs at least one CIDR or range",
            );
        }
        for (i, r) in self.spec.ranges.iter().enumerate() {
            if u32::from(r.start) > u32::from(r.end) {
                errs.push(
                    spec.child("ranges").index(i),
                    format!("start {} is after end {}", r.start, r.end),
                );
            }
        }
        for (i, addr) in self.spec.reserved.iter().enumerate() {
            if !self.contains(*addr) {
                errs.push(
                    spec.child("reserved").index(i),
                    format!("{addr} is not in the pool"),
                );
            }
        }
        let total: u64 = self.spec.cidrs.iter().map(|n| cidr_hosts(n).1).sum::<u64>()
            + self
                .spec
                .ranges
                .iter()
                .map(|r| u64::from(u32::from(r.end).saturating_sub(u32::from(r.start))) + 1)
                .sum::<u64>();
        if total > MAX_POOL_ADDRESSES {
            errs.push(
                spec.child("cidrs"),
                format!(
                    "the pool has {total} addresses; at most {MAX_POOL_ADDRESSES} are supported"
                ),
            );
        }
        if let Some(p) = self.spec.prefix_length
            && !(1..=32).contains(&p)
        {
            errs.push(spec.child("prefixLength"), "must be between 1 and 32");
        }
    }

    /// Whether `addr` lies in one of the pool's CIDRs or ranges.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.spec.cidrs.iter().any(|n| n.contains(&addr))
            || self
                .spec
                .ranges
                .iter()
                .any(|r| (r.start..=r.end).contains(&addr))
    }

    /// Every address that may be handed out, in order, without duplicates: CIDR host
    /// addresses and ranges, less the reserved addresses and the gateway.
    pub fn usable_addresses(&self) -> Vec<Ipv4Addr> {
        let mut out = std::collections::BTreeSet::new();
        for net in &self.spec.cidrs {
            let (first, count) = cidr_hosts(net);
            out.extend((0..count).map(|i| Ipv4Addr::from(first + i as u32)));
        }
        for r in &self.spec.ranges {
            out.extend((u32::from(r.start)..=u32::from(r.end)).map(Ipv4Addr::from));
        }
        for addr in self.spec.reserved.iter().chain(self.spec.gateway.iter()) {
            out.remove(addr);
        }
        out.into_iter().collect()
    }

    /// The prefix length workloads get.
    pub fn prefix_length(&self) -> u8 {
        self.spec
            .prefix_length
            .or_else(|| self.spec.cidrs.first().map(|n| n.prefix_len()))
            .unwrap_or(24)
    }
}

/// The first host address of `net` and how many host addresses it has; /31 and /32 networks
/// use every address.
fn cidr_hosts(net: &Ipv4Net) -> (u32, u64) {
    let base = u32::from(net.network());
    let size = 1u64 << (32 - net.prefix_len());
    if net.prefix_len() >= 31 {
        (base, size)
    } else {
        (base + 1, size - 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(yaml: &str) -> IpPool {
        serde_yaml_ng::from_str(yaml).expect("test pool parses")
    }

    #[test]
    fn test_usable_addresses_skip_network_broadcast_reserved_and_gateway() {
        let p = pool(
            "metadata: {name: p}\nspec:\n  cidrs: [10.0.0.0/29]\n  reserved: [10.0.0.2]\n  gateway: 10.0.0.1\n",
        );
        let usable: Vec<String> = p.usable_addresses().iter().map(|a| a.to_string()).collect();
        assert_eq!(usable, ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    }

    #[test]
    fn test_pool_fails_when_reserved_address_outside() {
        let p = pool(
            "metadata: {name: p}\nspec:\n  ranges: [{start: 10.0.0.5, end: 10.0.0.9}]\n  reserved: [10.0.1.1]\n",
        );
        let mut errs = ValidationErrors::default();
        p.validate(&mut errs);
        assert_eq!(errs.0.len(), 1);
        assert_eq!(errs.0[0].path.as_str(), "spec.reserved[0]");
    }
}
