//! `make demo`, asserted: runs examples/demo.sh non-interactively against this build and
//! checks every step of its output. Needs root, the static agent, the busybox image and the
//! kernel; run it with `make test-cli`.

mod common;

use std::process::Command;

#[test]
fn demo_runs_every_step() {
    let home = format!("/tmp/podvisor-demo-test-{}", std::process::id());
    let out = Command::new(common::root().join("examples/demo.sh"))
        .env("PODVISOR", common::bin())
        .env("PODVISOR_AGENT", common::agent())
        .env("PODVISOR_HOME", &home)
        .env("PODVISOR_BASE_PORT", "25790")
        .env_remove("PODVISOR_ENDPOINTS")
        .env_remove("PODVISOR_CONFIG")
        .output()
        .expect("the demo script runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(out.status.success(), "the demo failed:\n{all}");

    // 1. The host check names the isolation used here.
    assert!(stdout.contains("isolation"), "{all}");
    // 2. The cluster came up with a leader and two Ready nodes.
    assert!(stdout.contains("local cluster up: 3 masters"), "{all}");
    // 3. The manifests were applied.
    for obj in [
        "ippool/workload",
        "ippool/frontend",
        "pod/default/web",
        "pod/default/batch",
        "service/default/web",
        "virtualmachine/default/demo-vm",
    ] {
        assert!(
            stdout.contains(&format!("{obj} created")),
            "{obj} not created:\n{all}"
        );
    }
    // 4. The table: pods with phase, node and IP; the VM's state and reason; the VIP.
    let line = |start: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?}:\n{all}"))
            .to_string()
    };
    let web = line("web ");
    assert!(
        web.contains("Running") && web.contains("10.88.0.") && web.contains("node-"),
        "{web}"
    );
    let batch = line("batch ");
    assert!(
        batch.contains("Succeeded") && batch.contains("node-"),
        "{batch}"
    );
    let vm = line("demo-vm ");
    assert!(
        vm.contains("PoweredOn   PoweredOn") || vm.contains("SoftwarePagedKVM"),
        "the VM is neither running nor explained: {vm}"
    );
    if vm.contains("SoftwarePagedKVM") {
        assert!(stdout.contains("cannot run a Linux guest"), "{all}");
        assert!(stdout.contains("namespaces"), "{all}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("web ") && l.contains("10.89.0.")),
        "no VIP:\n{all}"
    );
    // 5. The batch log and the HTTP page.
    assert!(
        stdout.contains("batch step 1\nbatch step 2\nbatch step 3\ndone"),
        "{all}"
    );
    assert!(stdout.contains("hello from podvisor pod"), "{all}");
    // 6. A new leader after the kill, and the change applied afterwards ran.
    let leaders: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("leader: master-"))
        .collect();
    assert!(leaders.len() >= 2, "{all}");
    assert_ne!(
        leaders[0].split(' ').nth(1),
        leaders.last().and_then(|l| l.split(' ').nth(1)),
        "{all}"
    );
    assert!(
        stdout.contains("pod/default/after-failover created"),
        "{all}"
    );
    assert!(
        stdout.contains("scheduled and run after the leader master was killed"),
        "{all}"
    );
    // 7. Nothing left.
    assert!(stdout.contains("nothing left"), "{all}");
    assert!(stdout.contains("demo: OK"), "{all}");
    assert!(!std::path::Path::new(&home).exists());
}
