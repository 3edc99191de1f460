//! `podvisor cluster up`: three masters, two node agents, a bridge, and a wait until they
//! are ready.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use podvisor_cluster::objects::{Kind, Object};
use podvisor_cluster::registry::Registry;
use podvisor_store::{Client, ClientConfig, member_status};

use super::{Layout, alive, command, last_log_line};
use crate::error::{CliError, Result};
use crate::progress::{Progress, step};

/// `podvisor cluster up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The static podvisor agent binary (from vmm/agent/build-static).
    #[arg(long, env = "PODVISOR_AGENT")]
    pub agent: Option<PathBuf>,
    /// First of the loopback ports: masters serve clients on PORT..PORT+2, peers on
    /// PORT+10.., node agents on PORT+110..
    #[arg(long, default_value_t = 23790)]
    pub base_port: u16,
    /// Node agents to start.
    #[arg(long, default_value_t = 2)]
    pub nodes: u32,
    /// The host bridge the node agents' pods join.
    #[arg(long, default_value = "pvbr0")]
    pub bridge: String,
    /// The bridge's address: the gateway of the workload pool, with its prefix.
    #[arg(long, default_value = "10.88.0.1/24")]
    pub pod_gateway: String,
    /// How long a NotReady node keeps its pods before they are marked Failed.
    #[arg(long, default_value = "10s")]
    pub node_grace: String,
    /// Runtime classes the node agents offer (comma-separated), instead of what the host
    /// probe finds.
    #[arg(long)]
    pub runtime_class: Option<String>,
    /// How long to wait for a leader and Ready nodes.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

struct Proc {
    name: String,
    pid: i32,
}

/// Starts the local cluster and waits until a leader exists and every node is Ready.
///
/// # Errors
/// A cluster already runs under this home; a process fails to start or dies; the wait times
/// out (the error names the log to read).
pub fn up(layout: &Layout, args: &UpArgs) -> Result<()> {
    let running: Vec<_> = layout
        .processes()
        .into_iter()
        .filter(|(_, p)| alive(*p))
        .collect();
    if !running.is_empty() {
        return Err(CliError::Failed(format!(
            "a local cluster already runs under {} ({} processes); run `podvisor cluster down` first",
            layout.home.display(),
            running.len()
        )));
    }
    let agent = args.agent.clone().ok_or_else(|| {
        CliError::Usage("no agent binary: pass --agent or set PODVISOR_AGENT (vmm/agent/build-static builds it)".into())
    })?;
    if !agent.is_file() {
        return Err(CliError::Usage(format!(
            "agent binary {} does not exist",
            agent.display()
        )));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(CliError::Usage(
            "node agents need root (namespaces, cgroups, the bridge): run with sudo".into(),
        ));
    }
    let exe =
        std::env::current_exe().map_err(|e| CliError::io("finding the podvisor binary", e))?;
    for dir in ["pids", "logs", "masters", "nodes"] {
        let d = layout.home.join(dir);
        std::fs::create_dir_all(&d)
            .map_err(|e| CliError::io(format!("creating {}", d.display()), e))?;
    }

    let p = args.base_port;
    let members: Vec<String> = (0..3u16)
        .map(|i| format!("{}=127.0.0.1:{},127.0.0.1:{}", i + 1, p + 10 + i, p + i))
        .collect();
    let endpoints: Vec<String> = (0..3u16).map(|i| format!("127.0.0.1:{}", p + i)).collect();
    let node_names: Vec<String> = (1..=args.nodes).map(|i| format!("node-{i}")).collect();
    let config = format!(
        "# The local podvisor cluster, written by `podvisor cluster up`.\n\
         endpoints = {}\nbridge = {}\nnodes = {}\n",
        endpoints.join(","),
        args.bridge,
        node_names.join(",")
    );
    std::fs::write(layout.config(), config)
        .map_err(|e| CliError::io("writing the config file", e))?;

    step(&format!(
        "starting 3 masters (clients on {})",
        endpoints.join(",")
    ));
    let mut procs = Vec::new();
    for i in 1..=3u16 {
        let name = format!("master-{i}");
        let mut a = vec![
            "master".to_string(),
            "--id".into(),
            i.to_string(),
            "--data-dir".into(),
            layout.master_dir(&name).display().to_string(),
            "--node-grace".into(),
            args.node_grace.clone(),
        ];
        for m in &members {
            a.push("--member".into());
            a.push(m.clone());
        }
        procs.push(spawn(layout, &exe, &name, &a)?);
    }
    let mut progress = Progress::new("waiting for a leader");
    let deadline = Instant::now() + args.timeout;
    let leader = loop {
        check_alive(layout, &procs)?;
        let found = endpoints.iter().find_map(|e| {
            member_status(e, Duration::from_millis(300))
                .ok()
                .filter(|s| s.leader != 0)
        });
        if let Some(s) = found {
            break s.leader;
        }
        if Instant::now() > deadline {
            progress.fail();
            return Err(CliError::Timeout(format!(
                "no leader within {} (see {})",
                humantime::format_duration(args.timeout),
                layout.home.join("logs").display()
            )));
        }
        progress.tick();
        std::thread::sleep(Duration::from_millis(200));
    };
    progress.done();
    eprintln!("    leader: master-{leader}");

    step(&format!(
        "creating the pod bridge {} ({})",
        args.bridge, args.pod_gateway
    ));
    make_bridge(&args.bridge, &args.pod_gateway)?;

    step(&format!("starting {} node agents", args.nodes));
    for (i, name) in node_names.iter().enumerate() {
        let port = p + 110 + u16::try_from(i).unwrap_or(0);
        let mut a = vec![
            "node-agent".to_string(),
            "--name".into(),
            name.clone(),
            "--endpoints".into(),
            endpoints.join(","),
            "--state-dir".into(),
            layout.node_dir(name).display().to_string(),
            "--agent".into(),
            agent.display().to_string(),
            "--bridge".into(),
            args.bridge.clone(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        if let Some(rc) = &args.runtime_class {
            a.push("--runtime-class".into());
            a.push(rc.clone());
        }
        procs.push(spawn(layout, &exe, name, &a)?);
    }

    let mut cfg = ClientConfig::new(&endpoints);
    cfg.timeout = Duration::from_secs(3);
    let registry = Registry::new(std::sync::Arc::new(Client::with_config(cfg)?));
    let mut progress = Progress::new("waiting for the nodes to be Ready");
    loop {
        check_alive(layout, &procs)?;
        let ready = registry
            .list(Kind::Node, None)
            .map(|(nodes, _)| {
                nodes
                    .iter()
                    .filter(|n| matches!(n, Object::Node(n) if n.is_ready() && node_names.contains(&n.metadata.name)))
                    .count()
            })
            .unwrap_or(0);
        if ready == node_names.len() {
            break;
        }
        if Instant::now() > deadline {
            progress.fail();
            return Err(CliError::Timeout(format!(
                "{ready} of {} nodes Ready within {} (see {})",
                node_names.len(),
                humantime::format_duration(args.timeout),
                layout.home.join("logs").display()
            )));
        }
        progress.tick();
        std::thread::sleep(Duration::from_millis(200));
    }
    progress.done();
    println!(
        "local cluster up: 3 masters (leader master-{leader}), nodes {}; config {}",
        node_names.join(","),
        layout.config().display()
    );
    Ok(())
}

/// Starts `exe args` in a session of its own, stdout and stderr to its log, and records its
/// pid.
fn spawn(layout: &Layout, exe: &std::path::Path, name: &str, args: &[String]) -> Result<Proc> {
    let log_path = layout.log(name);
    let log = File::create(&log_path)
        .map_err(|e| CliError::io(format!("creating {}", log_path.display()), e))?;
    let err = log
        .try_clone()
        .map_err(|e| CliError::io("duplicating a log file", e))?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: the closure runs in the child between fork and exec and only calls setsid, which
    // is async-signal-safe; a new session lets the process outlive this command's terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| CliError::io(format!("starting {name}"), e))?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    std::fs::write(layout.pid_file(name), format!("{pid}\n"))
        .map_err(|e| CliError::io("writing a pid file", e))?;
    // The child is reaped by init once this command exits; it is not waited for here.
    std::mem::forget(child);
    Ok(Proc {
        name: name.to_string(),
        pid,
    })
}

fn check_alive(layout: &Layout, procs: &[Proc]) -> Result<()> {
    for p in procs {
        if !alive(p.pid) {
            let log = layout.log(&p.name);
            return Err(CliError::Failed(format!(
                "{} exited during startup: {} (log {})",
                p.name,
                last_log_line(&log),
                log.display()
            )));
        }
    }
    Ok(())
}

/// Creates the bridge with the gateway address, or checks that an existing one has it.
fn make_bridge(bridge: &str, gateway: &str) -> Result<()> {
    let exists = command("ip", &["-o", "link", "show", "dev", bridge]).is_ok();
    if !exists {
        command("ip", &["link", "add", bridge, "type", "bridge"]).map_err(CliError::Failed)?;
    }
    let addrs = command("ip", &["-o", "addr", "show", "dev", bridge]).map_err(CliError::Failed)?;
    if !addrs.contains(&format!(" {gateway} ")) {
        command("ip", &["addr", "add", gateway, "dev", bridge]).map_err(CliError::Failed)?;
    }
    command("ip", &["link", "set", bridge, "up"]).map_err(CliError::Failed)?;
    Ok(())
}
