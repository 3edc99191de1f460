//! `podvisor logs` and `podvisor exec`: the pod's node agent serves both, the way kubelet
//! serves `kubectl logs` and `kubectl exec`.
//!
//! The CLI reads the pod, finds the node it is bound to and the address the node agent
//! published in its Node status, and talks to that agent directly.

use std::io::Write;

use clap::Args;
use podvisor_cluster::node::client::{self, ContainerTarget, ExecEvent, NodeClientError};
use podvisor_cluster::registry::Registry;

use crate::error::{CliError, Result};

/// `podvisor logs`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  podvisor logs batch\n  podvisor logs -f web -c httpd")]
pub struct LogsArgs {
    /// The pod.
    pub pod: String,
    /// The container; the pod's first when omitted.
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep streaming new lines until interrupted or the pod's sandbox goes away.
    #[arg(short, long)]
    pub follow: bool,
    /// The pod's namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// `podvisor exec`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  podvisor exec web -- /bin/busybox cat /www/index.html")]
pub struct ExecArgs {
    /// The pod.
    pub pod: String,
    /// The container; the pod's first when omitted.
    #[arg(short, long)]
    pub container: Option<String>,
    /// The pod's namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn locate(
    registry: &Registry,
    ns: &str,
    pod: &str,
    container: Option<&str>,
) -> Result<ContainerTarget> {
    client::locate(registry, ns, pod, container).map_err(node_error)
}

fn node_error(err: NodeClientError) -> CliError {
    match err {
        NodeClientError::Registry(e) => e.into(),
        e @ NodeClientError::NoContainer { .. } => CliError::Usage(e.to_string()),
        NodeClientError::NotReachable(why) => CliError::Failed(why),
        NodeClientError::Agent(why) => CliError::Agent(why),
    }
}

/// Prints a container's log.
///
/// # Errors
/// The pod or its node cannot be found, or the node agent refuses.
pub fn logs(registry: &Registry, args: &LogsArgs) -> Result<()> {
    let target = locate(
        registry,
        &args.namespace,
        &args.pod,
        args.container.as_deref(),
    )?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in client::logs(&target, args.follow).map_err(node_error)? {
        let line = line.map_err(node_error)?;
        let written = if line.partial {
            write!(out, "{}", line.text)
        } else {
            writeln!(out, "{}", line.text)
        };
        if written.and_then(|()| out.flush()).is_err() {
            // stdout closed (a pager quit): stop quietly.
            return Ok(());
        }
    }
    Ok(())
}

/// Runs a process in a container; returns its exit status (128 + the signal when a signal
/// ended it).
///
/// # Errors
/// The pod or its node cannot be found, or the node agent refuses.
pub fn exec(registry: &Registry, args: &ExecArgs) -> Result<u8> {
    let target = locate(
        registry,
        &args.namespace,
        &args.pod,
        args.container.as_deref(),
    )?;
    for event in client::exec(&target, &args.command).map_err(node_error)? {
        match event.map_err(node_error)? {
            ExecEvent::Exit(status) => return Ok(status),
            ExecEvent::Output { stderr: true, data } => {
                let _ = std::io::stderr().write_all(&data);
            }
            ExecEvent::Output {
                stderr: false,
                data,
            } => {
                let mut out = std::io::stdout();
                let _ = out.write_all(&data).and_then(|()| out.flush());
            }
        }
    }
    Err(CliError::Agent(format!(
        "exec in {}: the stream ended without an exit status",
        args.pod
    )))
}
