//! `podvisor`: the command line of podvisor.
//!
//! One binary for operators and for the processes of a cluster. `master` and `node-agent` run
//! the control plane and the hosts; `apply`, `get`, `describe`, `delete`, `logs` and `exec`
//! work with objects the way kubectl does; `kv` reads and writes the raw store the way etcdctl
//! does; `vm run` and `host-check` use the VMM directly; `cluster up|down|status` runs a whole
//! three-master cluster on this machine.
//!
//! Every verb exits 0 on success and otherwise prints one line, `podvisor: <reason>`, on stderr
//! and exits non-zero. The logic lives in the library crates; this crate only turns arguments
//! into calls and answers into text.

mod context;
mod daemon;
mod error;
mod host;
mod kv;
mod local;
mod objects;
mod progress;
mod table;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::context::Context;
use crate::error::{CliError, Result};

/// podvisor: pods in their own micro-VMs, managed by a replicated control plane.
#[derive(Debug, Parser)]
#[command(name = "podvisor", version, about, propagate_version = true)]
#[command(
    after_help = "Example:\n  podvisor cluster up && podvisor apply -f examples/manifests \
    && podvisor get pods"
)]
struct Cli {
    /// Client addresses of the masters, comma-separated (else PODVISOR_ENDPOINTS, else the
    /// config file).
    #[arg(long, global = true, env = "PODVISOR_ENDPOINTS")]
    endpoints: Option<String>,
    /// The config file holding `endpoints = ...` (default $PODVISOR_HOME/config).
    #[arg(long, global = true, env = "PODVISOR_CONFIG")]
    config: Option<PathBuf>,
    /// How long one request to the masters may take, retries included.
    #[arg(long, global = true, default_value = "5s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one master: a replica of the store and the controllers.
    Master(daemon::MasterArgs),
    /// Run a node agent: registers a Node and runs the pods and VMs bound to it.
    NodeAgent(daemon::NodeAgentArgs),
    /// Create or update objects from manifests.
    Apply(objects::ApplyArgs),
    /// List objects, or show one, as a table, YAML or JSON.
    Get(objects::GetArgs),
    /// Show one object in detail, conditions and their messages included.
    Describe(objects::DescribeArgs),
    /// Delete an object (waiting for its finalizers).
    Delete(objects::DeleteArgs),
    /// Print a container's log.
    Logs(workload::LogsArgs),
    /// Run a command in a container; exits with the command's status.
    Exec(workload::ExecArgs),
    /// Read and write the raw store, like etcdctl.
    Kv(kv::KvArgs),
    /// Boot a kernel directly in a podvisor VM.
    Vm(VmArgs),
    /// Check what this host can run: KVM flavour, isolation, root, artifacts.
    HostCheck(host::HostCheckArgs),
    /// Run a whole cluster on this machine: up, down, status.
    Cluster(local::ClusterArgs),
}

/// `podvisor vm`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  podvisor vm run --kernel ~/.cache/podvisor/kernel/vmlinux --timeout 30"
)]
struct VmArgs {
    #[command(subcommand)]
    command: VmCommand,
}

#[derive(Debug, Subcommand)]
enum VmCommand {
    /// Boot a kernel with its console on stdout, then print how the VM ended.
    Run(host::VmRunArgs),
}

/// The artifact cache: `$PODVISOR_CACHE`, else `~/.cache/podvisor`.
pub fn default_cache() -> PathBuf {
    if let Some(c) = std::env::var_os("PODVISOR_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/podvisor")
}

fn run(cli: Cli) -> Result<()> {
    let ctx = || {
        Context::resolve(
            cli.endpoints.as_deref(),
            cli.config.as_deref(),
            cli.request_timeout,
        )
    };
    match cli.command {
        Command::Master(args) => daemon::run_master(args),
        Command::NodeAgent(args) => {
            let endpoints = ctx()?.endpoints;
            daemon::run_node_agent(args, endpoints)
        }
        Command::Apply(args) => {
            // A manifest that does not parse is reported before any master is contacted.
            objects::read_manifests(&args.files)?;
            objects::apply(&ctx()?.registry()?, &args)
        }
        Command::Get(args) => {
            objects::parse_kind(&args.kind)?;
            objects::get(&ctx()?.registry()?, &args)
        }
        Command::Describe(args) => {
            objects::parse_kind(&args.kind)?;
            objects::describe(&ctx()?.registry()?, &args)
        }
        Command::Delete(args) => {
            objects::parse_kind(&args.kind)?;
            objects::delete(&ctx()?.registry()?, &args)
        }
        Command::Logs(args) => workload::logs(&ctx()?.registry()?, &args),
        Command::Exec(args) => match workload::exec(&ctx()?.registry()?, &args)? {
            0 => Ok(()),
            code => Err(CliError::Exit(code)),
        },
        Command::Kv(args) => kv::run(&*ctx()?.client()?, &args),
        Command::Vm(VmArgs {
            command: VmCommand::Run(args),
        }) => host::vm_run(&args),
        Command::HostCheck(args) => host::host_check(&args),
        Command::Cluster(args) => {
            let layout = local::Layout::new(&args.home);
            match &args.command {
                local::ClusterCommand::Up(a) => local::up(&layout, a),
                local::ClusterCommand::Down(a) => local::down(&layout, a),
                local::ClusterCommand::Status(a) => {
                    // Masters named by --endpoints or PODVISOR_ENDPOINTS come before the local
                    // cluster's, so a cluster started by hand can be looked at too.
                    let named = cli.endpoints.as_deref().map(context::split_endpoints);
                    local::status(&layout, a, named)
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("podvisor: {}", error::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
