//! Scheduling with real node agents: capacity under churn, anti-affinity, runtime classes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{ControlPlane, node_agent, object, pod, pod_gone, pod_yaml, wait_for};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::objects::{Kind, Object, PodPhase};
use podvisor_cluster::registry::Registry;

fn bound_on(registry: &Registry, node: &str) -> usize {
    let (pods, _) = registry.list(Kind::Pod, None).expect("list pods");
    pods.iter()
        .filter(|o| match o {
            Object::Pod(p) => p.spec.node_name == node && !p.status.phase.is_terminal(),
            _ => false,
        })
        .count()
}

#[test]
fn a_node_that_fits_n_pods_never_runs_n_plus_one_under_churn() {
    const N: usize = 3;
    let mut plane = ControlPlane::start("sched-capacity", ControllerConfig::default());
    let _node = node_agent(&plane, "small", N as u32);
    let registry = plane.registry();

    // Watch the count of pods bound to the node for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, most, registry) = (stop.clone(), most.clone(), plane.registry());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                most.fetch_max(bound_on(&registry, "small"), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    for i in 0..N + 2 {
        registry
            .create(object(&pod_yaml(
                &format!("p{i}"),
                "app: churn",
                "Always",
                "sleep 600",
            )))
            .expect("create pod");
    }
    wait_for("N pods bound", Duration::from_secs(60), || {
        (bound_on(&registry, "small") == N).then_some(())
    });
    for (round, next) in (N + 2..N + 5).enumerate() {
        if round == 1 {
            // The controllers change leader in the middle of the churn.
            let leader = plane.wait_leader(Duration::from_secs(10));
            plane.kill_master(leader);
        }
        let registry = plane.registry();
        // Delete one bound pod and add one: pending pods take the freed place, never more.
        let (pods, _) = registry.list(Kind::Pod, None).expect("list");
        let victim = pods
            .iter()
            .find_map(|o| match o {
                Object::Pod(p)
                    if p.spec.node_name == "small" && p.metadata.deletion_timestamp.is_none() =>
                {
                    Some(p.metadata.name.clone())
                }
                _ => None,
            })
            .expect("a bound pod");
        registry
            .delete(Kind::Pod, "default", &victim)
            .expect("delete");
        registry
            .create(object(&pod_yaml(
                &format!("p{next}"),
                "app: churn",
                "Always",
                "sleep 600",
            )))
            .expect("create pod");
        wait_for(
            &format!("round {round}: {victim} gone"),
            Duration::from_secs(60),
            || pod_gone(&registry, &victim).then_some(()),
        );
        wait_for("the freed place taken", Duration::from_secs(60), || {
            (bound_on(&registry, "small") == N).then_some(())
        });
    }
    stop.store(true, Ordering::SeqCst);
    watcher.join().expect("watcher");
    let registry = plane.registry();
    assert_eq!(
        most.load(Ordering::SeqCst),
        N,
        "the node never held more than {N} pods"
    );

    let (pods, _) = registry.list(Kind::Pod, None).expect("list");
    let pending: Vec<_> = pods
        .iter()
        .filter_map(|o| match o {
            Object::Pod(p) if p.spec.node_name.is_empty() => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(pending.len(), 2);
    assert!(
        pending.iter().all(|p| p.status.reason == "Unschedulable"
            && p.status.message.contains("Insufficient pods"))
    );
}

#[test]
fn anti_affinity_spreads_replicas_over_nodes() {
    let plane = ControlPlane::start("sched-anti", ControllerConfig::default());
    let _a = node_agent(&plane, "node-a", 10);
    let _b = node_agent(&plane, "node-b", 10);
    let registry = plane.registry();
    for i in 0..3 {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-{i}, labels: {{app: web}}}}\nspec:\n  affinity:\n    podAntiAffinity:\n    - labelSelector: {{matchLabels: {{app: web}}}}\n      topologyKey: kubernetes.io/hostname\n  containers:\n  - {{name: main, image: busybox, command: [/bin/sleep, '600']}}\n"
        );
        registry.create(object(&yaml)).expect("create replica");
    }
    let nodes = wait_for("two replicas bound", Duration::from_secs(60), || {
        let mut nodes: Vec<String> = (0..3)
            .filter_map(|i| pod(&registry, &format!("web-{i}")))
            .map(|p| p.spec.node_name)
            .filter(|n| !n.is_empty())
            .collect();
        nodes.sort();
        (nodes.len() == 2).then_some(nodes)
    });
    assert_eq!(nodes, ["node-a", "node-b"]);
    let third = wait_for(
        "the third replica explained",
        Duration::from_secs(30),
        || {
            (0..3)
                .filter_map(|i| pod(&registry, &format!("web-{i}")))
                .find(|p| p.spec.node_name.is_empty() && !p.status.message.is_empty())
        },
    );
    assert_eq!(third.status.phase, PodPhase::Pending);
    assert!(
        third.status.message.contains("anti-affinity"),
        "{}",
        third.status.message
    );
}

#[test]
fn a_pod_whose_runtime_class_no_node_offers_stays_pending_with_a_reason() {
    let plane = ControlPlane::start("sched-class", ControllerConfig::default());
    let _a = node_agent(&plane, "ns-only", 10);
    let registry = plane.registry();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: wants-vm}\nspec:\n  runtimeClassName: microvm\n  containers:\n  - {name: main, image: busybox, command: [/bin/true]}\n";
    registry.create(object(yaml)).expect("create");
    let p = wait_for("an unschedulable reason", Duration::from_secs(30), || {
        pod(&registry, "wants-vm").filter(|p| !p.status.message.is_empty())
    });
    assert_eq!(p.status.phase, PodPhase::Pending);
    assert!(p.spec.node_name.is_empty());
    assert_eq!(
        p.status.message,
        "0/1 nodes are available: 1 node(s) didn't support runtime class microvm"
    );
}
