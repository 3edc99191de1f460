//! Addresses: pod and VM addresses from workload pools, Service VIPs from load-balancer pools,
//! and the release of addresses whose owner is gone.
//!
//! Each allocation and the write of the owner's status with the address are one transaction
//! (see [`crate::ipam`]), so an address is never held by an object that does not show it. An
//! exhausted pool is a condition on the object that waits for an address.

use std::collections::BTreeSet;

use super::{ControllerError, Snapshot};
use crate::ipam::{self, IpamError};
use crate::objects::{Condition, ConditionStatus, IpPool, Kind, Object, PoolPurpose, Timestamp};
use crate::registry::{self, Registry};

/// How an allocation names its owner: `Kind/namespace/name@uid`.
pub fn owner_id(obj: &Object) -> String {
    format!("{}@{}", obj.display_name(), obj.meta().uid)
}

pub(super) fn reconcile(registry: &Registry, snap: &Snapshot) -> Result<(), ControllerError> {
    // Free first, so that an address whose owner is gone is there for the next allocation.
    release_orphans(registry, snap)?;
    let workload = |wanted: &str| pick_pool(&snap.pools, PoolPurpose::Workload, wanted);
    for pod in &snap.pods {
        if pod.spec.node_name.is_empty()
            || !pod.status.pod_ip.is_empty()
            || pod.status.phase.is_terminal()
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let Some(pool) = workload("") else { continue };
        let mut obj = Object::Pod(pod.clone());
        assign(registry, pool, &mut obj, |o, ip| {
            if let Object::Pod(p) = o {
                p.status.pod_ip = ip.to_string();
                p.status.ip_pool = pool.metadata.name.clone();
            }
        })?;
    }
    for vm in &snap.vms {
        if vm.spec.node_name.is_empty()
            || !vm.status.ip.is_empty()
            || vm.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let Some(pool) = workload(&vm.spec.network.ip_pool) else {
            continue;
        };
        let mut obj = Object::VirtualMachine(vm.clone());
        assign(registry, pool, &mut obj, |o, ip| {
            if let Object::VirtualMachine(v) = o {
                v.status.ip = ip.to_string();
            }
        })?;
    }
    for svc in &snap.services {
        if !svc.status.vip.is_empty() || svc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(pool) = pick_pool(&snap.pools, PoolPurpose::LoadBalancer, &svc.spec.ip_pool)
        else {
            continue;
        };
        let mut obj = Object::Service(svc.clone());
        assign(registry, pool, &mut obj, |o, ip| {
            if let Object::Service(s) = o {
                s.status.vip = ip.to_string();
                s.status.ip_pool = pool.metadata.name.clone();
                Condition::set(
                    &mut s.status.conditions,
                    allocated(true, "", s.metadata.generation),
                );
            }
        })?;
    }
    pool_status(registry, snap)
}

/// Shows each pool's usable and allocated counts, and whether it is exhausted, in its status.
fn pool_status(registry: &Registry, snap: &Snapshot) -> Result<(), ControllerError> {
    for pool in &snap.pools {
        let (taken, _) = match ipam::allocations(registry.client(), &pool.metadata.name) {
            Ok(t) => t,
            Err(IpamError::Store(e)) => return Err(ControllerError::Store(e)),
            Err(_) => continue,
        };
        let usable = pool.usable_addresses().len() as u64;
        let allocated = taken.len() as u64;
        let exhausted = allocated >= usable;
        let shown = Condition::find(&pool.status.conditions, "Exhausted")
            .is_some_and(|c| (c.status == ConditionStatus::True) == exhausted);
        if pool.status.usable == usable && pool.status.allocated == allocated && shown {
            continue;
        }
        let name = pool.metadata.name.clone();
        // A conflict means the pool changed; the next pass looks again.
        let _ = registry.modify(Kind::IPPool, "", &name, |obj| {
            let Object::IPPool(p) = obj else { return false };
            p.status.usable = usable;
            p.status.allocated = allocated;
            Condition::set(
                &mut p.status.conditions,
                Condition {
                    type_: "Exhausted".into(),
                    status: if exhausted {
                        ConditionStatus::True
                    } else {
                        ConditionStatus::False
                    },
                    reason: if exhausted {
                        "NoFreeAddress".into()
                    } else {
                        "AddressesFree".into()
                    },
                    message: format!("{allocated} of {usable} usable addresses allocated"),
                    observed_generation: p.metadata.generation,
                    last_transition_time: None,
                },
            );
            true
        });
    }
    Ok(())
}

/// The pool named `wanted`, or the first pool of `purpose` by name.
fn pick_pool<'a>(pools: &'a [IpPool], purpose: PoolPurpose, wanted: &str) -> Option<&'a IpPool> {
    if wanted.is_empty() {
        pools
            .iter()
            .filter(|p| p.spec.purpose == purpose)
            .min_by_key(|p| &p.metadata.name)
    } else {
        pools
            .iter()
            .find(|p| p.metadata.name == wanted && p.spec.purpose == purpose)
    }
}

fn assign(
    registry: &Registry,
    pool: &IpPool,
    obj: &mut Object,
    set: impl Fn(&mut Object, std::net::Ipv4Addr),
) -> Result<(), ControllerError> {
    let owner = owner_id(obj);
    let with_address = |ip| {
        let mut updated = obj.clone();
        set(&mut updated, ip);
        updated
    };
    let result = ipam::allocate(
        registry.client(),
        pool,
        &owner,
        vec![registry::unchanged(obj)],
        |ip| vec![registry::put_op(&with_address(ip))],
    );
    match result {
        Ok((ip, true)) => {
            tracing::info!(owner, address = %ip, pool = %pool.metadata.name, "assigned address");
            Ok(())
        }
        Ok((ip, false)) => {
            // The owner already held the address (a rescheduled pod): show it in its status.
            // A conflict means the owner changed; the next pass looks again.
            let _ = registry.update(with_address(ip));
            Ok(())
        }
        Err(IpamError::Exhausted { pool: name, usable }) => {
            let message = format!(
                "IP pool {name:?} is exhausted: all {usable} usable addresses are allocated"
            );
            note_exhausted(registry, obj, &message);
            Ok(())
        }
        Err(IpamError::OwnerChanged { .. } | IpamError::Contended { .. }) => Ok(()),
        Err(IpamError::Store(e)) => Err(ControllerError::Store(e)),
    }
}

fn note_exhausted(registry: &Registry, obj: &Object, message: &str) {
    let mut obj = obj.clone();
    let generation = obj.meta().generation;
    let conditions = match &mut obj {
        Object::Pod(p) => {
            p.status.reason = "IPPoolExhausted".into();
            p.status.message = message.to_string();
            &mut p.status.conditions
        }
        Object::VirtualMachine(v) => &mut v.status.conditions,
        Object::Service(s) => &mut s.status.conditions,
        _ => return,
    };
    if Condition::find(conditions, "IPAllocated").is_some_and(|c| c.message == message) {
        return;
    }
    Condition::set(
        conditions,
        Condition {
            message: message.to_string(),
            ..allocated(false, "IPPoolExhausted", generation)
        },
    );
    let _ = registry.update(obj);
}

fn allocated(ok: bool, reason: &str, generation: u64) -> Condition {
    Condition {
        type_: "IPAllocated".into(),
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.into(),
        message: String::new(),
        observed_generation: generation,
        last_transition_time: Some(Timestamp::now()),
    }
}

/// Releases every address whose owner no longer exists (deleted, or recreated with a new uid).
/// Allocations newer than the snapshot are left alone: their owner may be newer too.
fn release_orphans(registry: &Registry, snap: &Snapshot) -> Result<(), ControllerError> {
    let mut owners: BTreeSet<String> = BTreeSet::new();
    owners.extend(snap.pods.iter().map(|p| owner_id(&Object::Pod(p.clone()))));
    owners.extend(
        snap.vms
            .iter()
            .map(|v| owner_id(&Object::VirtualMachine(v.clone()))),
    );
    owners.extend(
        snap.services
            .iter()
            .map(|s| owner_id(&Object::Service(s.clone()))),
    );
    for pool in &snap.pools {
        let (taken, _) = match ipam::allocations(registry.client(), &pool.metadata.name) {
            Ok(t) => t,
            Err(IpamError::Store(e)) => return Err(ControllerError::Store(e)),
            Err(_) => continue,
        };
        let orphans = taken
            .iter()
            .filter(|a| a.revision < snap.revision && !owners.contains(&a.owner));
        for a in orphans {
            match ipam::release(registry.client(), &pool.metadata.name, a.address, &a.owner) {
                Ok(_) => {
                    tracing::info!(address = %a.address, owner = %a.owner, "released address of a deleted object")
                }
                Err(IpamError::Store(e)) => return Err(ControllerError::Store(e)),
                Err(_) => {}
            }
        }
    }
    Ok(())
}
