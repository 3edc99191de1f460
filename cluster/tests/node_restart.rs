//! Node agents stopped and started in this process: a deliberate stop leaves the pods' status
//! alone and the next start runs them again, and one node name is run by one live agent.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ControlPlane, agent_binary, image_dir, node_agent, object, pod, pod_yaml, wait_for};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::node::{NodeAgent, NodeAgentConfig, NodeAgentError};
use podvisor_cluster::objects::{ContainerState, Kind, Object, PodPhase, RuntimeClass};
use podvisor_store::api::PutRequest;

/// The configuration `common::node_agent` uses, with its own state directory.
fn config(plane: &ControlPlane, name: &str, state: &str) -> NodeAgentConfig {
    let mut cfg = NodeAgentConfig::new(
        name,
        plane.dir.join("nodes").join(state),
        agent_binary(),
        common::scratch().to_path_buf(),
    );
    cfg.image_dir = image_dir();
    cfg.runtime_classes = Some(vec![RuntimeClass::Namespaces]);
    cfg.lease_ttl = Duration::from_secs(2);
    cfg
}

fn agent_address(plane: &ControlPlane, node: &str) -> String {
    match plane.registry().get(Kind::Node, "", node) {
        Ok(Object::Node(n)) => n.status.agent_address,
        other => panic!("node {node}: {other:?}"),
    }
}

#[test]
fn a_stopped_agent_leaves_its_pods_and_a_new_start_runs_them_again() {
    let plane = ControlPlane::start("restart-stop", ControllerConfig::default());
    let registry = plane.registry();
    let node = node_agent(&plane, "n1", 10);
    registry
        .create(object(&pod_yaml("steady", "app: s", "Always", "sleep 600")))
        .expect("create");
    let first = wait_for("steady Running", Duration::from_secs(60), || {
        pod(&registry, "steady").filter(|p| p.status.phase == PodPhase::Running)
    });
    let first_start = first.status.start_time.expect("a start time");

    node.stop();
    // Start times have second precision: let the next start be a later second.
    std::thread::sleep(Duration::from_millis(1100));
    let stopped = pod(&registry, "steady").expect("the pod");
    assert_eq!(
        stopped.status.phase,
        PodPhase::Running,
        "{:?}",
        stopped.status
    );
    assert_ne!(stopped.status.reason, "SandboxDied");
    assert!(
        !stopped
            .status
            .container_statuses
            .iter()
            .any(|c| matches!(c.state, ContainerState::Terminated { .. })),
        "{:?}",
        stopped.status
    );

    // A clean stop gave the lease back: the same name starts again at once.
    let started = Instant::now();
    let _node = node_agent(&plane, "n1", 10);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    let again = wait_for("steady Running again", Duration::from_secs(60), || {
        pod(&registry, "steady").filter(|p| {
            p.status.phase == PodPhase::Running
                && p.status.start_time.is_some_and(|t| t > first_start)
                && matches!(
                    p.status.container_statuses.first().map(|c| &c.state),
                    Some(ContainerState::Running { .. })
                )
        })
    });
    assert_eq!(again.spec.node_name, "n1");
}

#[test]
fn a_second_agent_of_a_live_node_is_refused() {
    let plane = ControlPlane::start("restart-twice", ControllerConfig::default());
    let first = NodeAgent::start(Arc::new(plane.client()), config(&plane, "n1", "first"))
        .expect("the first agent starts");
    let address = first.address().to_string();
    assert_eq!(agent_address(&plane, "n1"), address);

    let started = Instant::now();
    let second = NodeAgent::start(Arc::new(plane.client()), config(&plane, "n1", "second"));
    match second {
        Err(NodeAgentError::NameInUse { node }) => assert_eq!(node, "n1"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second agent of n1 started"),
    }
    // It waited the lease's TTL for a crashed holder to lapse before refusing.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        agent_address(&plane, "n1"),
        address,
        "the refused agent left the Node alone"
    );
}

#[test]
fn an_agent_takes_over_a_node_whose_holder_stopped_renewing() {
    let plane = ControlPlane::start("restart-takeover", ControllerConfig::default());
    // What a crashed agent leaves: the node's key on a lease nobody renews.
    let client = plane.client();
    let lease = client.lease_grant(2).expect("lease");
    client
        .put_with(PutRequest {
            key: b"/leases/nodes/n1".to_vec(),
            value: b"alive".to_vec(),
            lease: lease.id,
            prev_kv: false,
        })
        .expect("put");

    let started = Instant::now();
    let agent = NodeAgent::start(Arc::new(plane.client()), config(&plane, "n1", "n1"))
        .expect("the agent takes the node over once the lease lapsed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(agent_address(&plane, "n1"), agent.address().to_string());
    let held = client
        .get(b"/leases/nodes/n1".to_vec())
        .expect("get")
        .expect("the key");
    assert_ne!(held.lease, lease.id);
}
