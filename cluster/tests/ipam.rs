//! IPAM against a real three-master store: concurrent allocators, exhaustion and reuse.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{ControlPlane, object};
use podvisor_cluster::ipam::{self, IpamError};
use podvisor_cluster::objects::Object;

fn pool() -> podvisor_cluster::objects::IpPool {
    match object(
        "apiVersion: podvisor.io/v1alpha1\nkind: IPPool\nmetadata: {name: small}\nspec: {cidrs: [10.99.0.0/28], gateway: 10.99.0.1, reserved: [10.99.0.2]}\n",
    ) {
        Object::IPPool(p) => p,
        other => panic!("not a pool: {other:?}"),
    }
}

#[test]
fn eight_concurrent_allocators_drain_a_pool_without_duplicates() {
    let plane = ControlPlane::store_only("ipam-drain");
    let pool = Arc::new(pool());
    let usable = pool.usable_addresses().len();
    assert_eq!(
        usable, 12,
        "a /28 less network, broadcast, gateway and one reserved"
    );

    let workers: Vec<_> = (0..8)
        .map(|w| {
            let client = Arc::new(plane.client());
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0.. {
                    match ipam::allocate(
                        &client,
                        &pool,
                        &format!("worker-{w}-{i}"),
                        Vec::new(),
                        |_| Vec::new(),
                    ) {
                        Ok((addr, fresh)) => {
                            assert!(fresh);
                            got.push(addr);
                        }
                        Err(IpamError::Exhausted { .. }) => return got,
                        Err(e) => panic!("allocation failed: {e}"),
                    }
                }
                got
            })
        })
        .collect();
    let all: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an address was handed out twice: {all:?}"
    );
    assert_eq!(all.len(), usable);

    let err = ipam::allocate(&plane.client(), &pool, "late", Vec::new(), |_| Vec::new())
        .expect_err("exhausted");
    assert_eq!(
        err.to_string(),
        "IP pool \"small\" is exhausted: all 12 usable addresses are allocated"
    );
}

#[test]
fn a_released_address_is_reused() {
    let plane = ControlPlane::store_only("ipam-reuse");
    let client = plane.client();
    let pool = pool();
    let (first, _) = ipam::allocate(&client, &pool, "a", Vec::new(), |_| Vec::new()).expect("a");
    let (second, _) = ipam::allocate(&client, &pool, "b", Vec::new(), |_| Vec::new()).expect("b");
    assert_ne!(first, second);
    assert!(
        !ipam::release(&client, "small", first, "b").expect("release"),
        "only the owner releases"
    );
    assert!(ipam::release(&client, "small", first, "a").expect("release"));
    let (again, fresh) =
        ipam::allocate(&client, &pool, "c", Vec::new(), |_| Vec::new()).expect("c");
    assert!(fresh);
    assert_eq!(again, first, "the lowest free address is reused");
}
