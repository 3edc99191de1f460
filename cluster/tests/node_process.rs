//! Node agents as processes, killed with SIGKILL: node loss on the configured schedule, and an
//! agent restart that leaves no duplicate sandbox and nothing leaked.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ControlPlane, agent_binary, image_dir, node_agent, object, pod, pod_yaml, wait_for};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::objects::{Condition, ConditionStatus, Kind, Object, PodPhase};
use podvisor_cluster::registry::Registry;

/// The `podvisor` binary, which `make test-cluster` builds and names in `PODVISOR_BIN`.
fn podvisor_bin() -> PathBuf {
    let bin = PathBuf::from(
        std::env::var("PODVISOR_BIN")
            .expect("PODVISOR_BIN must name the podvisor binary (make test-cluster builds it)"),
    );
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// A node agent process; killed with SIGKILL when dropped.
struct AgentProcess(Child);

impl AgentProcess {
    fn spawn(plane: &ControlPlane, name: &str, state: &Path) -> AgentProcess {
        let endpoints: Vec<&str> = plane
            .members
            .iter()
            .map(|m| m.client_addr.as_str())
            .collect();
        let images = image_dir();
        let cache = images.parent().expect("the image dir is in the cache");
        let child = Command::new(podvisor_bin())
            .arg("--endpoints")
            .arg(endpoints.join(","))
            .args([
                "node-agent",
                "--name",
                name,
                "--runtime-class",
                "namespaces",
                "--lease-ttl",
                "2s",
            ])
            .arg("--state-dir")
            .arg(state)
            .arg("--agent")
            .arg(agent_binary())
            .arg("--cache")
            .arg(cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the node agent starts");
        AgentProcess(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn ready(registry: &Registry, node: &str) -> Option<ConditionStatus> {
    match registry.get(Kind::Node, "", node) {
        Ok(Object::Node(n)) => Condition::find(&n.status.conditions, "Ready").map(|c| c.status),
        _ => None,
    }
}

/// The sandbox cgroups of the pods `keeper` and `once` under this process's first cgroup
/// hierarchy, where sandboxes of agents started from here are made (other tests of this file
/// run their own pods beside them).
fn sandbox_cgroups() -> Vec<PathBuf> {
    let cgroup = podvisor_sandbox::Cgroup::current().expect("own cgroup");
    let Some(dir) = cgroup.dirs().first().cloned() else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("podvisor-default_keeper_")
                        || name.starts_with("podvisor-default_once_")
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Kills what a killed agent left running (its sandboxes outlive it until an agent restarts).
fn kill_leftovers(ids: &[String]) {
    for id in ids {
        if let Ok(cg) =
            podvisor_sandbox::Cgroup::current().and_then(|c| c.child(&format!("podvisor-{id}")))
        {
            cg.kill_all();
            let _ = cg.remove(Duration::from_secs(5));
        }
    }
}

#[test]
fn a_killed_node_goes_not_ready_then_its_pods_fail_or_move_on_schedule() {
    let grace = Duration::from_secs(3);
    let plane = ControlPlane::start(
        "proc-loss",
        ControllerConfig {
            node_grace: grace,
            ..ControllerConfig::default()
        },
    );
    let registry = plane.registry();
    let state = common::node_dir(&plane, "doomed");
    let mut doomed = AgentProcess::spawn(&plane, "doomed", &state);
    wait_for("doomed Ready", Duration::from_secs(30), || {
        (ready(&registry, "doomed") == Some(ConditionStatus::True)).then_some(())
    });

    registry
        .create(object(&pod_yaml("lonely", "app: l", "Always", "sleep 600")))
        .expect("create");
    let owned = pod_yaml("owned", "app: o", "Always", "sleep 600").replace(
        "metadata: {name: owned, labels: {app: o}}",
        "metadata: {name: owned, labels: {app: o}, ownerReferences: [{apiVersion: v1, kind: ReplicaSet, name: rs, uid: rs-1}]}",
    );
    registry.create(object(&owned)).expect("create owned");
    let ids: Vec<String> = ["lonely", "owned"]
        .iter()
        .map(|name| {
            let p = wait_for("Running on doomed", Duration::from_secs(60), || {
                pod(&registry, name).filter(|p| p.status.phase == PodPhase::Running)
            });
            podvisor_cluster::node::sandbox_id(&p)
        })
        .collect();

    // A second node to take the owned pod once the first is lost.
    let _survivor = node_agent(&plane, "survivor", 10);
    doomed.kill9();
    let killed = Instant::now();
    wait_for("doomed NotReady", Duration::from_secs(20), || {
        (ready(&registry, "doomed") == Some(ConditionStatus::Unknown)).then_some(())
    });
    let not_ready_after = killed.elapsed();
    assert!(
        not_ready_after < Duration::from_secs(10),
        "the 2 s lease lapsed after {not_ready_after:?}"
    );
    let not_ready = Instant::now();

    let lonely = wait_for("lonely Failed", Duration::from_secs(30), || {
        pod(&registry, "lonely").filter(|p| p.status.phase == PodPhase::Failed)
    });
    assert!(
        not_ready.elapsed() >= grace - Duration::from_millis(1100),
        "pods failed before the grace period"
    );
    assert_eq!(lonely.status.reason, "NodeLost");
    let moved = wait_for(
        "owned rescheduled and Running",
        Duration::from_secs(60),
        || {
            pod(&registry, "owned")
                .filter(|p| p.spec.node_name == "survivor" && p.status.phase == PodPhase::Running)
        },
    );
    assert_eq!(moved.status.container_statuses.len(), 1);
    kill_leftovers(&ids);
}

#[test]
fn an_agent_restart_runs_no_duplicate_sandbox_and_leaks_nothing() {
    let plane = ControlPlane::start("proc-restart", ControllerConfig::default());
    let registry = plane.registry();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .count();
    let cgroups_before = sandbox_cgroups();
    let state = common::node_dir(&plane, "phoenix");
    let mut agent = AgentProcess::spawn(&plane, "phoenix", &state);

    registry
        .create(object(&pod_yaml("keeper", "app: k", "Always", "sleep 600")))
        .expect("create");
    registry
        .create(object(&pod_yaml("once", "app: o", "Never", "sleep 600")))
        .expect("create");
    let first: Vec<String> = ["keeper", "once"]
        .iter()
        .map(|name| {
            let p = wait_for("Running", Duration::from_secs(60), || {
                pod(&registry, name).filter(|p| p.status.phase == PodPhase::Running)
            });
            podvisor_cluster::node::sandbox_id(&p)
        })
        .collect();
    assert_eq!(sandbox_cgroups().len(), cgroups_before.len() + 2);

    agent.kill9();
    let mut agent = AgentProcess::spawn(&plane, "phoenix", &state);

    // The restarted agent removes the old sandboxes and runs keeper again, once; the pod that
    // must never restart is Failed instead.
    let once = wait_for("once Failed", Duration::from_secs(60), || {
        pod(&registry, "once").filter(|p| p.status.phase == PodPhase::Failed)
    });
    assert_eq!(once.status.reason, "SandboxDied");
    wait_for("keeper Running again", Duration::from_secs(60), || {
        pod(&registry, "keeper")
            .filter(|p| p.status.phase == PodPhase::Running && p.status.start_time.is_some())
    });
    let sandboxes: Vec<_> = std::fs::read_dir(state.join("sandboxes"))
        .expect("sandboxes")
        .flatten()
        .collect();
    assert_eq!(
        sandboxes.len(),
        1,
        "only keeper has a sandbox: {sandboxes:?}"
    );
    assert_eq!(
        sandbox_cgroups().len(),
        cgroups_before.len() + 1,
        "exactly one sandbox cgroup"
    );
    assert!(
        !sandboxes
            .iter()
            .any(|s| s.file_name().to_string_lossy() == first[1])
    );

    for name in ["keeper", "once"] {
        registry.delete(Kind::Pod, "default", name).expect("delete");
    }
    wait_for("every pod gone", Duration::from_secs(60), || {
        registry
            .list(Kind::Pod, None)
            .ok()
            .filter(|(p, _)| p.is_empty())
    });
    // SIGTERM lets the agent stop what it runs and give its lease back.
    let pid = agent.0.id() as i32;
    // SAFETY: kill(2) with a pid this test spawned and a valid signal number.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = agent.0.wait();
    wait_for("no sandbox cgroup left", Duration::from_secs(20), || {
        (sandbox_cgroups() == cgroups_before).then_some(())
    });
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .count();
    assert_eq!(mounts_after, mounts_before, "no mount left behind");
    let left = std::fs::read_dir(state.join("sandboxes")).map_or(0, |d| d.flatten().count());
    assert_eq!(left, 0, "no sandbox directory left");
}
