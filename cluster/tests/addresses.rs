//! Pod addresses, Service VIPs, logs and restarts with real node agents on a pod bridge.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use common::{
    ControlPlane, agent_binary, image_dir, object, pod, pod_gone, pod_yaml, scratch, wait_for,
};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::node::{NodeAgent, NodeAgentConfig};
use podvisor_cluster::objects::{Kind, Object, PodPhase, RuntimeClass};

/// A node agent whose pods join `bridge`.
fn networked_agent(plane: &ControlPlane, name: &str, bridge: &str) -> NodeAgent {
    let mut cfg = NodeAgentConfig::new(
        name,
        scratch().join("nodes").join(name),
        agent_binary(),
        scratch().to_path_buf(),
    );
    cfg.image_dir = image_dir();
    cfg.runtime_classes = Some(vec![RuntimeClass::Namespaces]);
    cfg.bridge = Some(bridge.to_string());
    NodeAgent::start(Arc::new(plane.client()), cfg).expect("node agent starts")
}

/// Deletes the test bridge when the test ends, however it ends.
struct Bridge(&'static str);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", self.0])
            .status();
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn pods_get_pool_addresses_serve_http_and_release_them_on_delete() {
    let _bridge = Bridge("pvtest0");
    let plane = ControlPlane::start("addr-http", ControllerConfig::default());
    let _node = networked_agent(&plane, "n1", "pvtest0");
    let registry = plane.registry();
    registry
        .create(object("apiVersion: podvisor.io/v1alpha1\nkind: IPPool\nmetadata: {name: pods}\nspec: {cidrs: [10.123.0.0/29], gateway: 10.123.0.1}\n"))
        .expect("workload pool");
    registry
        .create(object("apiVersion: podvisor.io/v1alpha1\nkind: IPPool\nmetadata: {name: vips}\nspec: {purpose: LoadBalancer, ranges: [{start: 10.124.0.5, end: 10.124.0.5}]}\n"))
        .expect("frontend pool");
    registry
        .create(object(&pod_yaml(
            "web",
            "app: web",
            "Always",
            "exec /bin/busybox httpd -f -p 80 -h /etc",
        )))
        .expect("web pod");
    let web = wait_for(
        "web Running with an address",
        Duration::from_secs(60),
        || {
            pod(&registry, "web")
                .filter(|p| p.status.phase == PodPhase::Running && !p.status.pod_ip.is_empty())
        },
    );
    assert_eq!(
        web.status.pod_ip, "10.123.0.2",
        "the lowest usable address of the pool"
    );
    let page = wait_for("the page", Duration::from_secs(30), || {
        http_get(&format!("{}:80", web.status.pod_ip), "/passwd")
    });
    assert!(page.contains("root:x:0:0"), "{page}");

    // A Service gets the frontend pool's one VIP; a second one finds it exhausted.
    for name in ["front", "second"] {
        registry
            .create(object(&format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}\n")))
            .expect("service");
    }
    let service = |name: &str| match registry.get(Kind::Service, "default", name) {
        Ok(Object::Service(s)) => Some(s),
        _ => None,
    };
    let front = wait_for("a VIP", Duration::from_secs(30), || {
        service("front").filter(|s| !s.status.vip.is_empty())
    });
    assert_eq!(front.status.vip, "10.124.0.5");
    let second = wait_for("an exhaustion condition", Duration::from_secs(30), || {
        service("second").filter(|s| !s.status.conditions.is_empty())
    });
    assert!(second.status.vip.is_empty());
    assert!(
        second.status.conditions[0].message.contains("exhausted"),
        "{:?}",
        second.status.conditions
    );

    let frontend = wait_for(
        "the frontend pool shown exhausted",
        Duration::from_secs(30),
        || match registry.get(Kind::IPPool, "", "vips") {
            Ok(Object::IPPool(p)) if p.status.allocated == 1 => Some(p),
            _ => None,
        },
    );
    assert_eq!(frontend.status.usable, 1);
    assert_eq!(frontend.status.conditions[0].type_, "Exhausted");

    // Deleting the pod releases its address; the next pod reuses it.
    registry
        .delete(Kind::Pod, "default", "web")
        .expect("delete web");
    wait_for("web gone", Duration::from_secs(30), || {
        pod_gone(&registry, "web").then_some(())
    });
    registry
        .create(object(&pod_yaml(
            "next",
            "app: next",
            "Always",
            "sleep 600",
        )))
        .expect("next pod");
    let next = wait_for("next addressed", Duration::from_secs(60), || {
        pod(&registry, "next").filter(|p| !p.status.pod_ip.is_empty())
    });
    assert_eq!(
        next.status.pod_ip, "10.123.0.2",
        "the freed address is reused"
    );
}

#[test]
fn logs_are_served_and_restart_policy_is_honoured() {
    let plane = ControlPlane::start("addr-logs", ControllerConfig::default());
    let node = common::node_agent(&plane, "n1", 10);
    let registry = plane.registry();
    registry
        .create(object(&pod_yaml(
            "flaky",
            "app: f",
            "OnFailure",
            "echo attempt; exit 1",
        )))
        .expect("create");
    let restarted = wait_for("two restarts", Duration::from_secs(60), || {
        pod(&registry, "flaky").filter(|p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|c| c.restart_count >= 2)
        })
    });
    assert_ne!(restarted.status.phase, PodPhase::Succeeded);

    let body =
        http_get(&node.address().to_string(), "/logs/default/flaky/main").expect("logs answer");
    assert!(
        body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"),
        "{body}"
    );
    assert!(body.matches("stdout F attempt").count() >= 2, "{body}");
    let missing =
        http_get(&node.address().to_string(), "/logs/default/nobody/main").expect("answer");
    assert!(
        missing.contains("404") && missing.contains("has no sandbox"),
        "{missing}"
    );
}
