//! Pod start latency: create -> first byte of output of `busybox echo` in a namespace sandbox,
//! against Debian's crun running the same rootfs, measured in the same run.
//!
//! Prints `bench: pod_start ours=<ms>ms crun=<ms>ms ratio=<ours/crun>`, medians of the runs.
//! On a hybrid cgroup host crun refuses to run while the cgroup2 mount at
//! /sys/fs/cgroup/unified is visible, so the bench first moves itself into a private mount
//! namespace without it; both runtimes are measured there.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podvisor_sandbox::{
    ContainerConfig, ImageSource, Isolation, ProcessEvent, ProcessRef, Sandbox, SandboxConfig,
};

const RUNS: usize = 9;

fn main() {
    hide_unified_cgroup();
    let dir = tempfile::Builder::new()
        .prefix("podvisor-bench-")
        .tempdir()
        .expect("temp dir");
    let rootfs = busybox_rootfs(dir.path());
    let agent = agent();
    let bundle = crun_bundle(dir.path(), &rootfs);

    // One unmeasured run each warms caches (the binaries, the rootfs pages).
    ours(dir.path(), &agent, &rootfs, 0);
    let crun_ok = crun(dir.path(), &bundle, 0).is_some();

    let (mut o, mut c) = (Vec::new(), Vec::new());
    for i in 1..=RUNS {
        o.push(ours(dir.path(), &agent, &rootfs, i));
        if crun_ok && let Some(t) = crun(dir.path(), &bundle, i) {
            c.push(t);
        }
    }
    let ours_ms = median(&mut o);
    if c.is_empty() {
        println!("bench: pod_start ours={ours_ms:.2}ms crun=unavailable ratio=n/a");
        return;
    }
    let crun_ms = median(&mut c);
    println!(
        "bench: pod_start ours={ours_ms:.2}ms crun={crun_ms:.2}ms ratio={:.2}",
        ours_ms / crun_ms
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn agent() -> PathBuf {
    let p = std::env::var("PODVISOR_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("bench path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("podvisor-agent")
        });
    assert!(
        p.is_file(),
        "agent {} missing; set PODVISOR_AGENT",
        p.display()
    );
    p
}

/// Leaves the host's cgroup2 mount out of this process's view when it sits beside v1 (hybrid).
fn hide_unified_cgroup() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup/unified"))
    {
        return;
    }
    let private = c"/";
    let target = c"/sys/fs/cgroup/unified";
    // SAFETY: called first thing in main, while the process is single-threaded as unshare of
    // the mount namespace requires; the strings are NUL-terminated literals.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare mount namespace"
        );
        let none = c"none";
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        assert_eq!(
            libc::mount(
                none.as_ptr(),
                private.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null()
            ),
            0
        );
        assert_eq!(
            libc::umount2(target.as_ptr(), libc::MNT_DETACH),
            0,
            "{}",
            unified.display()
        );
    }
}

fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("rootfs dir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    root
}

fn ours(dir: &Path, agent: &Path, rootfs: &Path, i: usize) -> f64 {
    let began = Instant::now();
    let config = SandboxConfig::new(
        &format!("bench-{i}"),
        Isolation::Namespaces,
        dir.join("state"),
        agent.into(),
    );
    let sb = Sandbox::create(config).expect("sandbox");
    let created = began.elapsed();
    let mut c = ContainerConfig::new("c", ImageSource::Rootfs(rootfs.into()));
    c.process.args = vec!["/bin/busybox".into(), "echo".into(), "x".into()];
    let rx = sb.subscribe(&ProcessRef::main("c"));
    sb.create_container(&c).expect("container");
    let container = began.elapsed();
    sb.start("c").expect("start");
    let started = began.elapsed();
    loop {
        match rx
            .recv_timeout(Duration::from_secs(30))
            .expect("first byte")
        {
            ProcessEvent::Output(_, d) if !d.is_empty() => break,
            ProcessEvent::Exited(s) => panic!("exited {s:?} without output"),
            _ => {}
        }
    }
    let took = began.elapsed();
    if std::env::var_os("PODVISOR_BENCH_STEPS").is_some() {
        eprintln!(
            "ours: sandbox {created:?} container {container:?} start {started:?} byte {took:?}"
        );
    }
    sb.destroy().expect("destroy");
    took.as_secs_f64() * 1000.0
}

fn crun_bundle(dir: &Path, rootfs: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).expect("bundle");
    let ok = Command::new("crun")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .map(|s| s.success());
    if ok.unwrap_or(false) {
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("config.json")).expect("json");
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["/bin/busybox", "echo", "x"]);
        spec["root"]["path"] = rootfs.display().to_string().into();
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    }
    bundle
}

fn crun(dir: &Path, bundle: &Path, i: usize) -> Option<f64> {
    let state = dir.join("crun-state");
    let id = format!("podvisor-bench-{}-{i}", std::process::id());
    let began = Instant::now();
    let mut child = Command::new("crun")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut first = [0u8; 1];
    let got = child
        .stdout
        .as_mut()
        .map(|o| o.read(&mut first).unwrap_or(0))
        .unwrap_or(0);
    let took = began.elapsed();
    let out = child.wait_with_output().ok()?;
    let _ = Command::new("crun")
        .arg("--root")
        .arg(&state)
        .args(["delete", "-f", &id])
        .output();
    if got == 0 {
        eprintln!("crun: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    Some(took.as_secs_f64() * 1000.0)
}
