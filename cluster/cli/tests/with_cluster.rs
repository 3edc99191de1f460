//! Every object verb against a real local cluster: `cluster up` (three master processes, two
//! node agents), good input and bad input (a pod that does not exist) for each verb, then
//! `cluster down` and a check that nothing is left. Needs root and the static agent; run it
//! with `make test-cli`.

mod common;

use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

use common::{Run, agent, podvisor, root};

struct Cluster {
    home: String,
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    fn up() -> Cluster {
        let home = format!("/tmp/podvisor-cli-test-{}", std::process::id());
        let c = Cluster {
            home: home.clone(),
            env: vec![
                ("PODVISOR_HOME", home.clone()),
                ("PODVISOR_CONFIG", format!("{home}/config")),
                ("PODVISOR_AGENT", agent()),
            ],
        };
        let up = c.run(&[
            "cluster",
            "up",
            "--base-port",
            "24790",
            "--bridge",
            "pvbrtest",
        ]);
        up.ok();
        assert!(up.stdout.contains("local cluster up"), "{}", up.stdout);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        podvisor(args, &env)
    }

    fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env_remove("PODVISOR_ENDPOINTS")
            .spawn()
            .expect("podvisor starts")
    }

    fn wait_for(&self, args: &[&str], needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.run(args);
            if r.code == 0 && r.stdout.contains(needle) {
                return r.stdout;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in `{}` within {timeout:?}:\n{}{}",
                args.join(" "),
                r.stdout,
                r.stderr
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(&["cluster", "down"]);
    }
}

#[test]
fn verbs_against_a_local_cluster() {
    let c = Cluster::up();
    let manifests = root().join("examples/manifests").display().to_string();

    // cluster: status names a leader and both nodes; a second `up` is refused.
    let status = c.run(&["cluster", "status"]);
    let text = status.ok();
    assert!(text.contains("leader: master-"), "{text}");
    assert!(text.contains("node-1") && text.contains("node-2"), "{text}");
    c.run(&["cluster", "up", "--base-port", "24790"])
        .fails_with("already runs");
    // The same masters, named by hand, from a home that holds no local cluster.
    let by_hand = podvisor(
        &[
            "cluster",
            "status",
            "--home",
            "/nonexistent/podvisor-home",
            "--endpoints",
            "127.0.0.1:24790,127.0.0.1:24791,127.0.0.1:24792",
        ],
        &[],
    );
    assert!(
        by_hand.ok().contains("leader: master-"),
        "{}",
        by_hand.stdout
    );

    // apply: created, then unchanged; a dry run of a change shows a diff and writes nothing.
    let applied = c.run(&["apply", "-f", &manifests]);
    assert!(
        applied.ok().contains("pod/default/web created"),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("ippool/workload created"),
        "{}",
        applied.stdout
    );
    let again = c.run(&["apply", "-f", &manifests]);
    assert!(
        again.ok().lines().all(|l| l.ends_with("unchanged")),
        "{}",
        again.stdout
    );
    let changed =
        std::env::temp_dir().join(format!("podvisor-cli-web-{}.yaml", std::process::id()));
    let web = std::fs::read_to_string(root().join("examples/manifests/10-web.yaml"))
        .expect("web manifest");
    std::fs::write(
        &changed,
        web.replace("app: web", "app: web\n    tier: front"),
    )
    .expect("write");
    let dry = c.run(&["apply", "-f", changed.to_str().expect("utf-8"), "--dry-run"]);
    assert!(
        dry.ok().contains("pod/default/web configured (dry run)"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("+    tier: front"), "{}", dry.stdout);
    let _ = std::fs::remove_file(&changed);
    let after = c.run(&["get", "pod", "web", "-o", "yaml"]);
    assert!(
        !after.ok().contains("tier"),
        "a dry run wrote: {}",
        after.stdout
    );

    // get: tables with phase, node, IP; YAML and JSON.
    let pods = c.wait_for(&["get", "pods"], "Succeeded", Duration::from_secs(90));
    assert!(
        pods.contains("NAME") && pods.contains("PHASE") && pods.contains("RESTARTS"),
        "{pods}"
    );
    let web = c.wait_for(&["get", "pod", "web"], "Running", Duration::from_secs(90));
    assert!(web.contains("10.88.0."), "{web}");
    let json = c.run(&["get", "pod", "web", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok()).expect("JSON output");
    assert_eq!(v["kind"], "Pod");
    let nodes = c.run(&["get", "nodes"]);
    assert!(nodes.ok().contains("Ready"), "{}", nodes.stdout);
    let svc = c.wait_for(&["get", "svc"], "10.89.0.", Duration::from_secs(30));
    assert!(svc.contains("VIP"), "{svc}");
    c.wait_for(&["get", "vm", "demo-vm"], "demo-vm", Duration::from_secs(5));
    c.run(&["get", "pod", "nosuchpod"])
        .fails_with("Pod \"nosuchpod\" not found");
    c.run(&["get", "gizmos"]).fails_with("unknown kind");

    // describe: conditions and containers.
    let described = c.run(&["describe", "pod", "batch"]);
    assert!(
        described
            .ok()
            .contains("Terminated: Completed, exit code 0"),
        "{}",
        described.stdout
    );
    c.run(&["describe", "pod", "nosuchpod"])
        .fails_with("not found");

    // logs: decoded lines; a missing pod or container is an error.
    let logs = c.run(&["logs", "batch"]);
    assert_eq!(
        logs.ok(),
        "batch step 1\nbatch step 2\nbatch step 3\ndone\n"
    );
    c.run(&["logs", "nosuchpod"]).fails_with("not found");
    c.run(&["logs", "batch", "-c", "nope"])
        .fails_with("has no container \"nope\"");

    // logs -f: a request to the web pod shows up in its log (busybox httpd -v logs each
    // response) while it is being followed.
    let ip = v["status"]["podIP"].as_str().expect("a pod IP").to_string();
    let mut follow = c.spawn(&["logs", "-f", "web"]);
    let stdout = follow.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut http = std::net::TcpStream::connect((ip.as_str(), 80)).expect("the pod IP answers");
    http.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
    let mut page = String::new();
    let _ = http.read_to_string(&mut page);
    assert!(page.contains("hello from podvisor pod"), "{page}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = false;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("response:200") {
            seen = true;
            break;
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen, "the followed log never showed the request");

    // exec: output and the process's exit status.
    let cat = c.run(&[
        "exec",
        "web",
        "--",
        "/bin/busybox",
        "cat",
        "/www/index.html",
    ]);
    assert!(
        cat.ok().contains("hello from podvisor pod"),
        "{}",
        cat.stdout
    );
    let code = c.run(&["exec", "web", "--", "/bin/busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code.code, 3, "{}", code.stderr);
    c.run(&["exec", "nosuchpod", "--", "true"])
        .fails_with("not found");

    // kv: put, get, watch from a revision, delete.
    assert_eq!(c.run(&["kv", "put", "/cli-test/a", "1"]).ok(), "OK\n");
    assert_eq!(
        c.run(&["kv", "get", "/cli-test/a"]).ok(),
        "/cli-test/a\n1\n"
    );
    let watched = c.run(&[
        "kv",
        "watch",
        "/cli-test/",
        "--prefix",
        "--rev",
        "1",
        "--count",
        "1",
        "--timeout",
        "10s",
    ]);
    assert_eq!(watched.ok(), "PUT\n/cli-test/a\n1\n");
    assert_eq!(c.run(&["kv", "del", "/cli-test/", "--prefix"]).ok(), "1\n");
    c.run(&["kv", "get", "/cli-test/a"])
        .fails_with("key \"/cli-test/a\" not found");
    let keys = c.run(&["kv", "get", "/registry/pods/", "--prefix", "--keys-only"]);
    assert!(
        keys.ok().contains("/registry/pods/default/web"),
        "{}",
        keys.stdout
    );

    // delete: a pod with the node agent's finalizer goes once its sandbox is stopped.
    let deleted = c.run(&["delete", "pod", "web"]);
    assert!(
        deleted.ok().contains("pod/default/web deleted"),
        "{}",
        deleted.stdout
    );
    c.run(&["get", "pod", "web"]).fails_with("not found");
    c.run(&["delete", "pod", "web"]).fails_with("not found");

    // down: nothing left.
    let down = c.run(&["cluster", "down"]);
    assert!(
        down.ok()
            .contains("no process, mount, interface or cgroup left"),
        "{}",
        down.stdout
    );
    assert!(!std::path::Path::new(&c.home).exists());
}
