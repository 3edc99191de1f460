//! Pod and VM lifecycles with real node agents and a real store.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{ControlPlane, node_agent, object, pod, pod_gone, pod_yaml, wait_for};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::objects::{
    ContainerState, Kind, Object, Pod, PodPhase, PowerState, VirtualMachine,
};
use podvisor_cluster::registry::Registry;

fn terminated(p: &Pod) -> Option<(i32, String)> {
    match &p.status.container_statuses.first()?.state {
        ContainerState::Terminated {
            exit_code, reason, ..
        } => Some((*exit_code, reason.clone())),
        _ => None,
    }
}

#[test]
fn a_batch_pod_runs_to_completion_and_reports_its_exit() {
    let plane = ControlPlane::start("life-batch", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    registry
        .create(object(&pod_yaml("ok", "app: batch", "Never", "echo done")))
        .expect("create");
    registry
        .create(object(&pod_yaml("bad", "app: batch", "Never", "exit 3")))
        .expect("create");
    let ok = wait_for("ok Succeeded", Duration::from_secs(60), || {
        pod(&registry, "ok").filter(|p| p.status.phase == PodPhase::Succeeded)
    });
    assert_eq!(terminated(&ok), Some((0, "Completed".into())));
    let bad = wait_for("bad Failed", Duration::from_secs(60), || {
        pod(&registry, "bad").filter(|p| p.status.phase == PodPhase::Failed)
    });
    assert_eq!(terminated(&bad), Some((3, "Error".into())));
}

#[test]
fn a_pod_whose_image_is_missing_stays_pending_with_the_reason() {
    let plane = ControlPlane::start("life-no-image", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    let yaml = pod_yaml("imageless", "app: i", "Always", "sleep 600")
        .replace("image: busybox", "image: no-such-image");
    registry.create(object(&yaml)).expect("create");
    let waiting_reason = |p: &Pod| match &p.status.container_statuses.first()?.state {
        ContainerState::Waiting { reason } if reason.starts_with("CreateContainerError") => {
            Some(reason.clone())
        }
        _ => None,
    };
    let reason = wait_for("a create error", Duration::from_secs(60), || {
        pod(&registry, "imageless").and_then(|p| waiting_reason(&p))
    });
    assert!(reason.contains("not found"), "{reason}");

    // Retries keep failing (restartPolicy Always backs off and tries again); the pod stays
    // Pending all along, its container waiting with the reason.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let p = pod(&registry, "imageless").expect("the pod");
        assert_eq!(p.status.phase, PodPhase::Pending, "{:?}", p.status);
        assert!(waiting_reason(&p).is_some(), "{:?}", p.status);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn killing_a_sandbox_process_tree_fails_the_pod_never_succeeds_it() {
    let plane = ControlPlane::start("life-kill", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    registry
        .create(object(&pod_yaml("victim", "app: v", "Never", "sleep 600")))
        .expect("create");
    let running = wait_for("victim Running", Duration::from_secs(60), || {
        pod(&registry, "victim").filter(|p| p.status.phase == PodPhase::Running)
    });
    let id = podvisor_cluster::node::sandbox_id(&running);
    let cgroup = podvisor_sandbox::Cgroup::current()
        .and_then(|c| c.child(&format!("podvisor-{id}")))
        .expect("the sandbox cgroup");
    assert!(!cgroup.pids().expect("sandbox pids").is_empty());
    cgroup.kill_all();
    let failed = wait_for("victim ended", Duration::from_secs(60), || {
        pod(&registry, "victim").filter(|p| p.status.phase.is_terminal())
    });
    assert_eq!(failed.status.phase, PodPhase::Failed);
    let (code, _) = terminated(&failed).expect("terminated container");
    assert_ne!(code, 0);
}

#[test]
fn deleting_a_running_pod_stops_it_within_its_grace_period() {
    let plane = ControlPlane::start("life-delete", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    registry
        .create(object(&pod_yaml(
            "stubborn",
            "app: s",
            "Always",
            "trap \"\" TERM; sleep 600",
        )))
        .expect("create");
    wait_for("Running", Duration::from_secs(60), || {
        pod(&registry, "stubborn").filter(|p| p.status.phase == PodPhase::Running)
    });
    let started = Instant::now();
    registry
        .delete(Kind::Pod, "default", "stubborn")
        .expect("delete");
    let still = pod(&registry, "stubborn").expect("kept by the node agent's finalizer");
    assert!(still.metadata.deletion_timestamp.is_some());
    wait_for("the pod gone", Duration::from_secs(30), || {
        pod_gone(&registry, "stubborn").then_some(())
    });
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "SIGTERM was ignored, so the one-second grace period ran out first"
    );
}

#[test]
fn controllers_keep_working_after_the_leader_master_is_killed() {
    let mut plane = ControlPlane::start("life-master", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    registry
        .create(object(&pod_yaml("before", "app: a", "Never", "true")))
        .expect("create");
    wait_for("before bound", Duration::from_secs(60), || {
        pod(&registry, "before").filter(|p| !p.spec.node_name.is_empty())
    });
    let leader = plane.wait_leader(Duration::from_secs(10));
    plane.kill_master(leader);
    let new_leader = plane.wait_leader(Duration::from_secs(20));
    assert_ne!(new_leader, leader);
    let registry = plane.registry();
    registry
        .create(object(&pod_yaml("after", "app: a", "Never", "true")))
        .expect("create after failover");
    let after = wait_for("after Succeeded", Duration::from_secs(60), || {
        pod(&registry, "after").filter(|p| p.status.phase == PodPhase::Succeeded)
    });
    assert_eq!(after.spec.node_name, "n1");
}

fn vm(registry: &Registry, name: &str) -> Option<VirtualMachine> {
    match registry.get(Kind::VirtualMachine, "default", name) {
        Ok(Object::VirtualMachine(v)) => Some(v),
        _ => None,
    }
}

fn guest(name: &str, code: &[u8]) -> PathBuf {
    let path = common::scratch().join(name);
    std::fs::write(&path, podvisor_vmm::guest::pvh_elf(code)).expect("write guest");
    path
}

fn vm_yaml(name: &str, kernel: &std::path::Path) -> String {
    format!(
        "apiVersion: podvisor.io/v1alpha1\nkind: VirtualMachine\nmetadata: {{name: {name}}}\nspec:\n  class: {{vcpus: 1, memoryMiB: 32}}\n  image: {{kernel: {}}}\n  powerState: PoweredOn\n",
        kernel.display()
    )
}

#[test]
fn a_virtual_machine_follows_its_power_state() {
    let plane = ControlPlane::start("life-vm", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    // cli; hlt; jmp back: the tiny guest halts until it is stopped.
    let kernel = guest("halt.elf", &[0xfa, 0xf4, 0xeb, 0xfc]);
    registry
        .create(object(&vm_yaml("tiny", &kernel)))
        .expect("create vm");
    wait_for("PoweredOn", Duration::from_secs(60), || {
        vm(&registry, "tiny").filter(|v| v.status.power_state == PowerState::PoweredOn)
    });
    registry
        .modify(Kind::VirtualMachine, "default", "tiny", |o| {
            let Object::VirtualMachine(v) = o else {
                return false;
            };
            v.spec.power_state = PowerState::PoweredOff;
            true
        })
        .expect("power off");
    let off = wait_for("PoweredOff", Duration::from_secs(30), || {
        vm(&registry, "tiny").filter(|v| v.status.power_state == PowerState::PoweredOff)
    });
    assert_eq!(off.status.last_exit_reason, "stopped by the host");
}

#[test]
fn a_guest_that_fails_shows_its_typed_exit_reason() {
    let plane = ControlPlane::start("life-vm-fail", ControllerConfig::default());
    let _node = node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    // ud2 with no IDT: the guest cannot deliver the exception and triple-faults.
    let kernel = guest("fault.elf", &[0x0f, 0x0b]);
    registry
        .create(object(&vm_yaml("broken", &kernel)))
        .expect("create vm");
    let stopped = wait_for("an exit reason", Duration::from_secs(60), || {
        vm(&registry, "broken").filter(|v| !v.status.last_exit_reason.is_empty())
    });
    assert_eq!(stopped.status.power_state, PowerState::PoweredOff);
    let reason = stopped.status.last_exit_reason;
    assert!(
        reason.contains("triple fault")
            || reason.contains("internal error")
            || reason.contains("emulation"),
        "{reason}"
    );
}
