//! `podvisor logs` and `podvisor exec`: the pod's node agent serves both, the way kubelet
//! serves `kubectl logs` and `kubectl exec`.
//!
//! The CLI reads the pod, finds the node it is bound to and the address the node agent
//! published in its Node status, and talks to that agent directly.

use std::io::{BufRead, BufReader, Write};

use base64::Engine;
use clap::Args;
use podvisor_cluster::objects::{Kind, Object, Pod};
use podvisor_cluster::registry::Registry;

use crate::agent_http;
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

/// The pod, its container's name and its node agent's address.
fn locate(
    registry: &Registry,
    ns: &str,
    name: &str,
    container: Option<&str>,
) -> Result<(Pod, String, String)> {
    let Object::Pod(pod) = registry.get(Kind::Pod, ns, name)? else {
        return Err(CliError::Failed(format!("pod {name:?} is not a pod")));
    };
    let container = match container {
        Some(c) => {
            if !pod.spec.containers.iter().any(|k| k.name == c) {
                let known: Vec<&str> = pod
                    .spec
                    .containers
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect();
                return Err(CliError::Usage(format!(
                    "pod {name:?} has no container {c:?} (it has: {})",
                    known.join(", ")
                )));
            }
            c.to_string()
        }
        None => pod
            .spec
            .containers
            .first()
            .map(|c| c.name.clone())
            .ok_or_else(|| CliError::Failed(format!("pod {name:?} has no containers")))?,
    };
    if pod.spec.node_name.is_empty() {
        return Err(CliError::Failed(format!(
            "pod {name:?} is not scheduled to a node yet (phase {:?})",
            pod.status.phase
        )));
    }
    let Object::Node(node) = registry.get(Kind::Node, "", &pod.spec.node_name)? else {
        return Err(CliError::Failed(format!(
            "node {:?} is not a node",
            pod.spec.node_name
        )));
    };
    if node.status.agent_address.is_empty() {
        return Err(CliError::Failed(format!(
            "node {:?} has not published its agent address",
            node.metadata.name
        )));
    }
    Ok((pod, container, node.status.agent_address))
}

/// Prints a container's log, decoding the CRI lines (`<time> <stream> <F|P> <text>`).
///
/// # Errors
/// The pod or its node cannot be found, or the node agent refuses.
pub fn logs(registry: &Registry, args: &LogsArgs) -> Result<()> {
    let (_, container, agent) = locate(
        registry,
        &args.namespace,
        &args.pod,
        args.container.as_deref(),
    )?;
    let path = format!(
        "/logs/{}/{}/{container}{}",
        args.namespace,
        args.pod,
        if args.follow { "?follow=1" } else { "" }
    );
    let mut resp = agent_http::request(&agent, "GET", &path, b"")?;
    if resp.status != 200 {
        return Err(CliError::Agent(format!(
            "logs of {}/{container}: {}",
            args.pod,
            agent_http::error_text(&mut resp)
        )));
    }
    let reader = BufReader::new(resp.body);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line.map_err(|e| CliError::io("reading the log stream", e))?;
        let (text, partial) = decode_cri_line(&line);
        let written = if partial {
            write!(out, "{text}")
        } else {
            writeln!(out, "{text}")
        };
        if written.and_then(|()| out.flush()).is_err() {
            // stdout closed (a pager quit): stop quietly.
            return Ok(());
        }
    }
    Ok(())
}

/// Splits a CRI log line into its text and whether it is a partial line.
pub fn decode_cri_line(line: &str) -> (&str, bool) {
    let mut parts = line.splitn(4, ' ');
    let (_time, stream, tag) = (parts.next(), parts.next(), parts.next());
    match (stream, tag) {
        (Some("stdout" | "stderr"), Some(tag @ ("F" | "P"))) => {
            (parts.next().unwrap_or(""), tag == "P")
        }
        _ => (line, false),
    }
}

/// Runs a process in a container; returns its exit status (128 + the signal when a signal
/// ended it).
///
/// # Errors
/// The pod or its node cannot be found, or the node agent refuses.
pub fn exec(registry: &Registry, args: &ExecArgs) -> Result<u8> {
    let (_, container, agent) = locate(
        registry,
        &args.namespace,
        &args.pod,
        args.container.as_deref(),
    )?;
    let body = serde_json::to_vec(&args.command)
        .map_err(|e| CliError::Failed(format!("encoding the command: {e}")))?;
    let path = format!("/exec/{}/{}/{container}", args.namespace, args.pod);
    let mut resp = agent_http::request(&agent, "POST", &path, &body)?;
    if resp.status != 200 {
        return Err(CliError::Agent(format!(
            "exec in {}/{container}: {}",
            args.pod,
            agent_http::error_text(&mut resp)
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    for line in BufReader::new(resp.body).lines() {
        let line = line.map_err(|e| CliError::io("reading the exec stream", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| CliError::Agent(format!("exec stream: {e}: {line:?}")))?;
        if let Some(exit) = event.get("exit") {
            if let Some(code) = exit.get("code").and_then(serde_json::Value::as_i64) {
                return Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255));
            }
            let signal = exit
                .get("signal")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            return Ok(u8::try_from((128 + signal).clamp(0, 255)).unwrap_or(255));
        }
        if let Some(err) = event.get("error").and_then(serde_json::Value::as_str) {
            return Err(CliError::Agent(format!(
                "exec in {}/{container}: {err}",
                args.pod
            )));
        }
        let data = event
            .get("data")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let bytes = b64
            .decode(data)
            .map_err(|e| CliError::Agent(format!("exec stream: bad base64: {e}")))?;
        let is_err = event.get("stream").and_then(serde_json::Value::as_str) == Some("stderr");
        let _ = if is_err {
            std::io::stderr().write_all(&bytes)
        } else {
            std::io::stdout()
                .write_all(&bytes)
                .and_then(|()| std::io::stdout().flush())
        };
    }
    Err(CliError::Agent(format!(
        "exec in {}/{container}: the stream ended without an exit status",
        args.pod
    )))
}
