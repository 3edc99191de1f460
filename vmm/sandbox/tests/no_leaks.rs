//! Destroying a sandbox leaves no process, mount, cgroup or descriptor behind, counted before
//! and after. This runs alone in its test binary so nothing else moves the counts.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use podvisor_sandbox::{Cgroup, Limits, ProcessRef, ProcessSpec};

#[derive(Debug, PartialEq, Eq)]
struct Counts {
    descendants: usize,
    mounts: usize,
    cgroups: usize,
    fds: usize,
}

/// Processes whose ancestry leads to this test process.
fn descendants() -> usize {
    let me = std::process::id() as i32;
    let mut parent = std::collections::HashMap::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid: i32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parent.insert(pid, ppid);
    }
    parent
        .keys()
        .filter(|&&p| {
            let mut cur = p;
            for _ in 0..64 {
                match parent.get(&cur) {
                    Some(&pp) if pp == me => return true,
                    Some(&pp) if pp > 1 => cur = pp,
                    _ => return false,
                }
            }
            false
        })
        .count()
}

fn count_dirs(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| 1 + count_dirs(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

fn counts() -> Counts {
    let cg = Cgroup::current().unwrap();
    Counts {
        descendants: descendants(),
        mounts: fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count(),
        cgroups: cg.dirs().iter().map(|d| count_dirs(d)).sum(),
        fds: fs::read_dir("/proc/self/fd").unwrap().count(),
    }
}

#[test]
fn destroyed_sandboxes_leak_no_process_mount_cgroup_or_fd() {
    // Warm up lazily created state (the image, thread pools) before counting.
    let _ = busybox_image();
    let before = counts();

    for round in 0..2 {
        let sb = sandbox(&format!("leak-{round}"));
        let mut c = container("c", &["sh", "-c", "sleep 60 & sleep 60 & echo up; wait"]);
        c.limits = Limits {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(500),
        };
        let rx = sb.subscribe(&ProcessRef::main("c"));
        sb.create_container(&c).unwrap();
        sb.start("c").unwrap();
        wait_for_output(&rx, "up", Duration::from_secs(30));
        sb.exec(
            "c",
            "bg",
            ProcessSpec {
                args: vec!["sleep".into(), "60".into()],
                ..Default::default()
            },
        )
        .unwrap();
        sb.create_container(&container("never-started", &["true"]))
            .unwrap();
        let during = counts();
        assert!(
            during.descendants > before.descendants,
            "{during:?} vs {before:?}"
        );
        assert!(during.cgroups > before.cgroups, "{during:?} vs {before:?}");
        sb.destroy().unwrap();
    }

    // Reader threads finish asynchronously; give them a moment.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counts(), before);
}
