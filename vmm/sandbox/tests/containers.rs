//! Real containers in namespace sandboxes: exit codes, streams, stdin, exec, signals, stop,
//! memory limits, reaping and pods of several containers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use podvisor_sandbox::{ExitStatus, Limits, ProcessRef, ProcessSpec};

const LONG: Duration = Duration::from_secs(60);

#[test]
fn exit_code_and_terminating_signal_are_reported() {
    let out = run_once("exit-code", &container("c", &["sh", "-c", "exit 7"]));
    assert_eq!(out.status, Some(ExitStatus::Code(7)));

    let out = run_once(
        "exit-signal",
        &container("c", &["sh", "-c", "kill -TERM $$; sleep 5"]),
    );
    assert_eq!(
        out.status,
        Some(ExitStatus::Signal {
            signal: 15,
            oom_killed: false
        })
    );
}

#[test]
fn stdout_and_stderr_stay_apart_and_in_order() {
    let script = "i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
    let out = run_once("streams", &container("c", &["sh", "-c", script]));
    let want_out: String = (0..200).map(|i| format!("out{i}\n")).collect();
    let want_err: String = (0..200).map(|i| format!("err{i}\n")).collect();
    assert_eq!(out.stdout_text(), want_out);
    assert_eq!(String::from_utf8_lossy(&out.stderr), want_err);
    assert_eq!(out.status, Some(ExitStatus::Code(0)));
}

#[test]
fn one_mib_of_output_then_exit_3_arrives_exactly() {
    let script = "yes abcdefg | head -c 1048576; exit 3";
    let out = run_once("one-mib", &container("c", &["sh", "-c", script]));
    let want: Vec<u8> = b"abcdefg\n".iter().copied().cycle().take(1 << 20).collect();
    assert_eq!(out.stdout.len(), want.len());
    assert!(out.stdout == want, "output differs from the expected 1 MiB");
    assert_eq!(out.status, Some(ExitStatus::Code(3)));
}

#[test]
fn stdin_reaches_the_process() {
    let sb = sandbox("stdin");
    let mut c = container("c", &["sh", "-c", "cat; echo done"]);
    c.process.stdin = true;
    let me = ProcessRef::main("c");
    let rx = sb.subscribe(&me);
    sb.create_container(&c).unwrap();
    sb.start("c").unwrap();
    let input: Vec<u8> = (0..100_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    sb.write_stdin(&me, &input).unwrap();
    sb.close_stdin(&me).unwrap();
    let out = collect(&rx, LONG);
    let mut want = input.clone();
    want.extend(b"done\n");
    assert!(
        out.stdout == want,
        "stdin did not come back intact ({} bytes)",
        out.stdout.len()
    );
    assert_eq!(out.status, Some(ExitStatus::Code(0)));
    sb.destroy().unwrap();
}

#[test]
fn exec_runs_in_the_running_container_with_its_identity() {
    let sb = sandbox("exec");
    let mut c = container("c", &["sh", "-c", "echo ready; exec sleep 60"]);
    c.hostname = "pod-host".into();
    c.process.env = vec!["GREETING=hi".into()];
    let main = ProcessRef::main("c");
    let rx = sb.subscribe(&main);
    sb.create_container(&c).unwrap();
    sb.start("c").unwrap();
    wait_for_output(&rx, "ready", LONG);

    let ex = ProcessRef::exec("c", "probe");
    let erx = sb.subscribe(&ex);
    let spec = ProcessSpec {
        args: [
            "sh",
            "-c",
            "hostname; id -u; id -g; pwd; echo $WHO; cat /proc/1/cmdline | tr '\\0' ' '; exit 5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        env: vec!["WHO=exec".into()],
        cwd: "/var/www".into(),
        user: "www".into(),
        stdin: false,
    };
    sb.exec("c", "probe", spec).unwrap();
    let out = collect(&erx, LONG);
    let lines: Vec<&str> = out.stdout_text().leak().lines().collect();
    assert_eq!(&lines[..5], ["pod-host", "33", "33", "/var/www", "exec"]);
    assert!(
        lines[5].starts_with("podvisor-agent container-init"),
        "pid 1 is {:?}",
        lines[5]
    );
    assert_eq!(out.status, Some(ExitStatus::Code(5)));
    assert_eq!(sb.wait(&ex).unwrap(), ExitStatus::Code(5));

    let stats = sb.stats("c").unwrap();
    assert!(stats.cpu_ns > 0 && stats.memory_bytes > 0, "{stats:?}");

    let status = sb.stop("c", Duration::from_secs(5)).unwrap();
    assert_eq!(
        status,
        ExitStatus::Signal {
            signal: 15,
            oom_killed: false
        }
    );
    sb.destroy().unwrap();
}

#[test]
fn signals_reach_the_process() {
    let sb = sandbox("signals");
    let script = "trap 'echo got-usr1; exit 4' USR1; echo ready; while true; do sleep 0.05; done";
    let main = ProcessRef::main("c");
    let rx = sb.subscribe(&main);
    sb.create_container(&container("c", &["sh", "-c", script]))
        .unwrap();
    sb.start("c").unwrap();
    wait_for_output(&rx, "ready", LONG);
    sb.signal(&main, libc::SIGUSR1).unwrap();
    let out = collect(&rx, LONG);
    assert_eq!(out.stdout_text(), "got-usr1\n");
    assert_eq!(out.status, Some(ExitStatus::Code(4)));
    sb.destroy().unwrap();
}

#[test]
fn grace_period_stop_kills_a_process_that_ignores_sigterm() {
    let sb = sandbox("grace");
    let script = "trap '' TERM; echo ready; while true; do sleep 1; done";
    let rx = sb.subscribe(&ProcessRef::main("c"));
    sb.create_container(&container("c", &["sh", "-c", script]))
        .unwrap();
    sb.start("c").unwrap();
    wait_for_output(&rx, "ready", LONG);
    let began = Instant::now();
    let status = sb.stop("c", Duration::from_millis(500)).unwrap();
    let took = began.elapsed();
    assert_eq!(
        status,
        ExitStatus::Signal {
            signal: 9,
            oom_killed: false
        }
    );
    assert!(
        took >= Duration::from_millis(500),
        "killed before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    sb.destroy().unwrap();
}

#[test]
fn memory_limit_ends_in_oom_killed() {
    let mut c = container(
        "c",
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    c.limits = Limits {
        memory_bytes: Some(32 << 20),
        cpu_millis: Some(1000),
    };
    let out = run_once("oom", &c);
    assert_eq!(
        out.status,
        Some(ExitStatus::Signal {
            signal: 9,
            oom_killed: true
        })
    );
    assert!(out.status.unwrap().oom_killed());
    assert!(!out.stdout_text().contains("survived"));
}

#[test]
fn agent_as_pid_1_reaps_orphaned_zombies() {
    // Twenty orphans die while their parent is gone; whoever is PID 1 must reap them.
    let script = "i=0; while [ $i -lt 20 ]; do (sleep 0.1 &); i=$((i+1)); done; sleep 1; \
                  cat /proc/[0-9]*/stat";
    let out = run_once("zombies", &container("c", &["sh", "-c", script]));
    let zombies: Vec<&str> = out
        .stdout_text()
        .leak()
        .lines()
        .filter(|l| {
            l.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .collect();
    assert!(zombies.is_empty(), "unreaped zombies: {zombies:?}");
    assert_eq!(out.status, Some(ExitStatus::Code(0)));
}

#[test]
fn two_containers_share_the_pod_sandbox() {
    let sb = sandbox("pod");
    let web = container(
        "web",
        &["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/var/www"],
    );
    sb.create_container(&web).unwrap();
    sb.start("web").unwrap();

    // Same network namespace: the second container reaches the first on loopback. Own mount
    // namespace and root: it does not see a file the first one writes.
    let script = "i=0; until wget -qO- http://127.0.0.1:8080/index.html; do \
                  i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.05; done; hostname; \
                  ls /tmp/web-only 2>/dev/null || echo isolated";
    let client = container("client", &["sh", "-c", script]);
    let rx = sb.subscribe(&ProcessRef::main("client"));
    sb.exec(
        "web",
        "mark",
        ProcessSpec {
            args: vec!["touch".into(), "/tmp/web-only".into()],
            ..Default::default()
        },
    )
    .unwrap();
    sb.create_container(&client).unwrap();
    sb.start("client").unwrap();
    let out = collect(&rx, LONG);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.stdout_text(),
        "hello from a podvisor pod\nclient\nisolated\n",
        "{err}"
    );
    assert_eq!(out.status, Some(ExitStatus::Code(0)));

    let log = std::fs::read_to_string(sb.log_path("client")).unwrap();
    assert!(
        log.contains(" stdout F hello from a podvisor pod\n"),
        "log: {log}"
    );
    sb.destroy().unwrap();
}

#[test]
fn container_log_is_bounded_rotated_and_followed_live() {
    let mut config = podvisor_sandbox::SandboxConfig::new(
        "logs",
        podvisor_sandbox::Isolation::Namespaces,
        state_dir(),
        agent(),
    );
    // Small files, enough of them to keep all of the output: the follower must cross rotations.
    config.logs = podvisor_sandbox::LogPolicy {
        max_bytes: 16 << 10,
        max_files: 8,
    };
    let sb = podvisor_sandbox::Sandbox::create(config).unwrap();
    let script = "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done";
    let rx = sb.subscribe(&ProcessRef::main("c"));
    sb.create_container(&container("c", &["sh", "-c", script]))
        .unwrap();
    let mut follower = sb.follow_log("c");
    sb.start("c").unwrap();

    // Follow while the container writes, across rotations, until its last line arrives.
    let mut seen = String::new();
    let deadline = Instant::now() + LONG;
    while !seen.contains(" stdout F line1999\n") && Instant::now() < deadline {
        seen.push_str(&String::from_utf8_lossy(
            &follower.next_chunk(Duration::from_millis(100)).unwrap(),
        ));
    }
    assert_eq!(collect(&rx, LONG).status, Some(ExitStatus::Code(0)));
    let lines: Vec<&str> = seen
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let want: Vec<String> = (0..2000).map(|i| format!("line{i}")).collect();
    let first_bad = lines.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        lines == want,
        "followed {} lines, first out of order at {first_bad:?}",
        lines.len()
    );

    let log = sb.log_path("c");
    for suffix in ["", ".1", ".2", ".3", ".4"] {
        let p = format!("{}{suffix}", log.display());
        assert!(
            std::fs::metadata(&p).unwrap().len() <= 16 << 10,
            "{p} over its bound"
        );
    }
    assert!(
        !std::path::Path::new(&format!("{}.9", log.display())).exists(),
        "more than 8 rotated files"
    );
    sb.destroy().unwrap();
}
