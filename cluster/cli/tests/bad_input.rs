//! Every verb with input that cannot work: an unknown kind, a malformed manifest, masters that
//! do not answer, missing files. Each must end with one clear line on stderr and a non-zero
//! exit, without needing a cluster. And every verb's `--help` carries an example.

mod common;

use common::podvisor;

const NOWHERE: &str = "127.0.0.1:1";

fn unreachable(args: &[&str]) {
    let mut full = vec!["--endpoints", NOWHERE, "--request-timeout", "1s"];
    full.extend_from_slice(args);
    podvisor(&full, &[]).fails_with("cannot reach the masters at 127.0.0.1:1");
}

#[test]
fn every_verb_has_help_with_an_example() {
    let verbs: &[&[&str]] = &[
        &[],
        &["master"],
        &["node-agent"],
        &["apply"],
        &["get"],
        &["describe"],
        &["delete"],
        &["logs"],
        &["exec"],
        &["kv"],
        &["kv", "get"],
        &["kv", "put"],
        &["kv", "del"],
        &["kv", "watch"],
        &["vm"],
        &["vm", "run"],
        &["host-check"],
        &["cluster"],
        &["cluster", "up"],
        &["cluster", "down"],
        &["cluster", "status"],
    ];
    for v in verbs {
        let mut args = v.to_vec();
        args.push("--help");
        let run = podvisor(&args, &[]);
        let text = run.ok();
        assert!(
            text.contains("Example"),
            "`podvisor {}` has no example:\n{text}",
            args.join(" ")
        );
    }
}

#[test]
fn unknown_kind_is_refused_before_any_request() {
    for verb in [
        &["get", "gizmos"][..],
        &["describe", "gizmo", "x"],
        &["delete", "gizmo", "x"],
    ] {
        podvisor(verb, &[]).fails_with("unknown kind \"gizmo");
    }
}

#[test]
fn malformed_manifest_names_the_file_and_document() {
    let dir = std::env::temp_dir().join(format!("podvisor-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let syntax = dir.join("syntax.yaml");
    std::fs::write(&syntax, "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n").expect("write");
    podvisor(&["apply", "-f", syntax.to_str().expect("utf-8")], &[])
        .fails_with("syntax.yaml: document 1");

    let invalid = dir.join("invalid.yaml");
    std::fs::write(
        &invalid,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n",
    )
    .expect("write");
    podvisor(&["apply", "-f", invalid.to_str().expect("utf-8")], &[]).fails_with("spec.containers");

    let unknown = dir.join("unknown.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: v1\nkind: Gizmo\nmetadata: {name: x}\n",
    )
    .expect("write");
    podvisor(&["apply", "-f", unknown.to_str().expect("utf-8")], &[]).fails_with("Gizmo");

    podvisor(&["apply", "-f", "/nonexistent/manifests"], &[]).fails_with("/nonexistent/manifests");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreachable_masters_are_named() {
    unreachable(&["get", "pods"]);
    unreachable(&["describe", "pod", "web"]);
    unreachable(&["delete", "pod", "web"]);
    unreachable(&["logs", "web"]);
    unreachable(&["exec", "web", "--", "true"]);
    unreachable(&["kv", "get", "/a"]);
    unreachable(&["kv", "put", "/a", "b"]);
    unreachable(&[
        "apply",
        "-f",
        &common::root()
            .join("examples/manifests")
            .display()
            .to_string(),
    ]);
}

#[test]
fn no_endpoints_anywhere_says_where_to_look() {
    podvisor(&["get", "pods"], &[]).fails_with("no endpoints");
}

#[test]
fn endpoints_come_from_env_and_config_file() {
    podvisor(
        &["--request-timeout", "1s", "get", "pods"],
        &[("PODVISOR_ENDPOINTS", NOWHERE)],
    )
    .fails_with("cannot reach the masters at 127.0.0.1:1");
    let cfg = std::env::temp_dir().join(format!("podvisor-cli-cfg-{}", std::process::id()));
    std::fs::write(&cfg, format!("# test\nendpoints = {NOWHERE}\n")).expect("write");
    podvisor(
        &["--request-timeout", "1s", "get", "pods"],
        &[("PODVISOR_CONFIG", cfg.to_str().expect("utf-8"))],
    )
    .fails_with("cannot reach the masters at 127.0.0.1:1");
    let _ = std::fs::remove_file(&cfg);
}

#[test]
fn vm_run_refuses_a_missing_kernel() {
    podvisor(&["vm", "run", "--kernel", "/nonexistent/vmlinux"], &[])
        .fails_with("kernel /nonexistent/vmlinux does not exist");
}

#[test]
fn vm_run_reports_a_kernel_that_is_not_one() {
    let file = std::env::temp_dir().join(format!("podvisor-cli-notakernel-{}", std::process::id()));
    std::fs::write(&file, b"this is not a kernel").expect("write");
    podvisor(
        &[
            "vm",
            "run",
            "--kernel",
            file.to_str().expect("utf-8"),
            "--timeout",
            "5",
        ],
        &[],
    )
    .fails_with("cannot start the VM");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn host_check_names_the_isolation() {
    let run = podvisor(&["host-check"], &[]);
    assert!(run.stdout.contains("isolation"), "{}", run.stdout);
    assert!(run.stdout.contains("kvm"), "{}", run.stdout);
}

#[test]
fn cluster_status_without_a_cluster_says_so() {
    podvisor(
        &["cluster", "status", "--home", "/nonexistent/podvisor-home"],
        &[],
    )
    .fails_with("no local cluster under /nonexistent/podvisor-home");
}

#[test]
fn cluster_up_without_an_agent_says_how_to_get_one() {
    podvisor(
        &[
            "cluster",
            "up",
            "--home",
            "/tmp/podvisor-cli-noagent",
            "--agent",
            "/nonexistent/agent",
        ],
        &[],
    )
    .fails_with("agent binary /nonexistent/agent does not exist");
}

#[test]
fn node_agent_without_an_agent_binary_is_refused() {
    podvisor(
        &[
            "node-agent",
            "--name",
            "n",
            "--state-dir",
            "/tmp/x",
            "--agent",
            "/nonexistent/agent",
            "--endpoints",
            NOWHERE,
        ],
        &[],
    )
    .fails_with("agent binary /nonexistent/agent does not exist");
}

#[test]
fn master_with_a_member_list_without_itself_is_refused() {
    let dir = std::env::temp_dir().join(format!("podvisor-cli-master-{}", std::process::id()));
    podvisor(
        &[
            "master",
            "--id",
            "4",
            "--data-dir",
            dir.to_str().expect("utf-8"),
            "--member",
            "1=127.0.0.1:1,127.0.0.1:2",
        ],
        &[],
    )
    .fails_with("master 4 cannot start");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exec_needs_a_command() {
    let run = podvisor(&["exec", "web"], &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("COMMAND"), "{}", run.stderr);
}

#[test]
fn vm_run_boots_the_cached_kernel_until_its_timeout() {
    let kernel = std::env::var("PODVISOR_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/podvisor")
        })
        .join("kernel/vmlinux");
    assert!(
        kernel.is_file(),
        "{} is missing: run `make kernel`",
        kernel.display()
    );
    let run = podvisor(
        &[
            "vm",
            "run",
            "--kernel",
            kernel.to_str().expect("utf-8"),
            "--timeout",
            "3",
            "--memory",
            "128",
        ],
        &[],
    );
    // Hardware-assisted KVM boots to a panic (no root) and resets; PVM is still emulating the
    // early boot when the timeout stops it. Either way the VM ended, and said how.
    match run.code {
        0 => assert!(run.stderr.contains("VM ended"), "{}", run.stderr),
        124 => assert!(run.stderr.contains("timed out after"), "{}", run.stderr),
        other => panic!("vm run exited {other}: {}", run.stderr),
    }
}
