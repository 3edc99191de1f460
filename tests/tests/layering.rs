//! The crates stand apart: dependencies between podvisor's crates point one way
//! (`ffi` → `cluster` → `vmm`), so the VMM, the sandbox layer and the store can each be
//! embedded without the rest. Reads the workspace's real dependency graph with
//! `cargo metadata`, normal dependencies only (tests and benches may reach further).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate and the podvisor crates it may depend on, directly or not.
const ALLOWED: &[(&str, &[&str])] = &[
    ("podvisor-vmm", &[]),
    ("podvisor-agent", &[]),
    ("podvisor-store", &[]),
    ("podvisor-sandbox", &["podvisor-vmm", "podvisor-agent"]),
    (
        "podvisor-cluster",
        &[
            "podvisor-store",
            "podvisor-sandbox",
            "podvisor-vmm",
            "podvisor-agent",
        ],
    ),
    (
        "podvisor-cli",
        &[
            "podvisor-cluster",
            "podvisor-store",
            "podvisor-sandbox",
            "podvisor-vmm",
            "podvisor-agent",
        ],
    ),
    (
        "podvisor-ffi",
        &[
            "podvisor-cluster",
            "podvisor-store",
            "podvisor-sandbox",
            "podvisor-vmm",
            "podvisor-agent",
        ],
    ),
    ("podvisor-examples", &["podvisor-vmm"]),
    ("podvisor-tests", &[]),
];

/// Normal (non-dev, non-build) dependencies on podvisor crates, per workspace crate.
fn direct_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|n| n.starts_with("podvisor-"))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// Everything `name` depends on, directly or through other podvisor crates.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn crate_dependencies_point_one_way() {
    let graph = direct_dependencies();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for name in graph.keys() {
        let Some(may) = allowed.get(name.as_str()) else {
            panic!("workspace crate {name} is not in this test's ALLOWED table");
        };
        let extra: Vec<String> = closure(&graph, name)
            .into_iter()
            .filter(|d| !may.contains(&d.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{name} depends on {extra:?}, against the layering ffi -> cluster -> vmm"
        );
    }
    for name in allowed.keys() {
        assert!(
            graph.contains_key(*name),
            "{name} is not a workspace crate any more"
        );
    }
}

#[test]
fn the_vmm_and_the_store_embed_alone() {
    let graph = direct_dependencies();
    for standalone in ["podvisor-vmm", "podvisor-store", "podvisor-agent"] {
        let deps = closure(&graph, standalone);
        assert!(
            deps.is_empty(),
            "{standalone} must build without other podvisor crates, but pulls in {deps:?}"
        );
    }
}
