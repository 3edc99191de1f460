//! `podvisor cluster status`: the masters with their raft state, the leader, the controller
//! leader and the nodes.

use std::time::Duration;

use clap::Args;
use podvisor_cluster::controllers::LEADER_KEY;
use podvisor_cluster::objects::Kind;
use podvisor_cluster::registry::Registry;
use podvisor_store::{Client, ClientConfig, member_status};

use super::{Layout, alive};
use crate::error::{CliError, Result};
use crate::objects::{Output, format_objects};
use crate::table::render;

/// `podvisor cluster status`.
#[derive(Debug, Args)]
pub struct StatusArgs {}

/// Prints the masters, leader and nodes of the local cluster, or of the masters `named`.
///
/// # Errors
/// No masters are named and no local cluster is configured under the home directory, or no
/// master answers.
pub fn status(layout: &Layout, _args: &StatusArgs, named: Option<Vec<String>>) -> Result<()> {
    let endpoints = named
        .filter(|e| !e.is_empty())
        .or_else(|| {
            layout
                .setting("endpoints")
                .map(|e| crate::context::split_endpoints(&e))
        })
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no local cluster under {} (run `podvisor cluster up`, or name the masters \
                 with --endpoints)",
                layout.home.display()
            ))
        })?;
    let pids = layout.processes();
    let mut rows = Vec::new();
    let mut leader = 0;
    for (i, addr) in endpoints.iter().enumerate() {
        let name = format!("master-{}", i + 1);
        let pid = pids.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
        let pid_text = pid.map_or("-".into(), |p| {
            if alive(p) {
                p.to_string()
            } else {
                format!("{p} (dead)")
            }
        });
        match member_status(addr, Duration::from_millis(800)) {
            Ok(s) => {
                if s.leader != 0 {
                    leader = s.leader;
                }
                let role = if s.leader == s.id {
                    "leader"
                } else {
                    "follower"
                };
                rows.push(vec![
                    name,
                    addr.clone(),
                    pid_text,
                    role.into(),
                    s.term.to_string(),
                    s.revision.to_string(),
                ]);
            }
            Err(_) => rows.push(vec![
                name,
                addr.clone(),
                pid_text,
                "unreachable".into(),
                "-".into(),
                "-".into(),
            ]),
        }
    }
    print!(
        "{}",
        render(
            &["MASTER", "CLIENT", "PID", "ROLE", "TERM", "REVISION"],
            &rows
        )
    );
    if leader == 0 {
        return Err(CliError::Unreachable {
            endpoints: endpoints.join(","),
            reason: "no master knows a leader".into(),
        });
    }
    let leader_pid = pids
        .iter()
        .find(|(n, _)| *n == format!("master-{leader}"))
        .map_or(0, |(_, p)| *p);
    println!("leader: master-{leader} pid {leader_pid}");

    let mut cfg = ClientConfig::new(&endpoints);
    cfg.timeout = Duration::from_secs(5);
    let client = std::sync::Arc::new(Client::with_config(cfg)?);
    let controllers = client
        .get(LEADER_KEY.as_bytes())
        .ok()
        .flatten()
        .map_or("none".into(), |kv| {
            String::from_utf8_lossy(&kv.value).into_owned()
        });
    println!("controllers: led by {controllers}");
    let registry = Registry::new(client);
    let (nodes, _) = registry.list(Kind::Node, None)?;
    println!();
    print!(
        "{}",
        format_objects(Kind::Node, &nodes, Output::Table, false)
    );
    Ok(())
}
