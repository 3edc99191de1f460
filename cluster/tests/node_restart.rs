//! Node agents stopped and started in this process: a deliberate stop leaves the pods' status
//! alone and the next start runs them again.

mod common;

use std::time::{Duration, Instant};

use common::{ControlPlane, node_agent, object, pod, pod_yaml, wait_for};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::objects::{ContainerState, PodPhase};

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
