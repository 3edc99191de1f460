//! The caller's side of a node agent's logs and exec, as `kubectl logs` and `kubectl exec`
//! reach kubelet.
//!
//! [`locate`] reads the pod, checks the container, and finds the node the pod is bound to and
//! the address its agent published in the Node status. [`logs`] then streams the container's
//! log as decoded lines, and [`exec`] runs a process in the container and streams its output
//! and exit status. The CLI and libpodvisor both use these.

use std::io::{BufRead, BufReader, Lines};

use base64::Engine;

use super::http;
use crate::objects::{Kind, Object, Pod};
use crate::registry::{Registry, RegistryError};

/// Why a logs or exec request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeClientError {
    /// Reading the pod or its node failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The pod has no container of that name.
    #[error("pod {pod:?} has no container {container:?} (it has: {})", known.join(", "))]
    NoContainer {
        /// The pod.
        pod: String,
        /// The container asked for.
        container: String,
        /// The containers it has.
        known: Vec<String>,
    },
    /// The pod cannot be reached yet, or is not something that runs.
    #[error("{0}")]
    NotReachable(String),
    /// The node agent could not be reached, refused, or answered something unreadable.
    #[error("{0}")]
    Agent(String),
}

type Result<T> = std::result::Result<T, NodeClientError>;

/// Where one container of a pod is served.
#[derive(Debug, Clone)]
pub struct ContainerTarget {
    /// The pod as read.
    pub pod: Pod,
    /// The container's name.
    pub container: String,
    /// The node agent's address.
    pub agent: String,
}

/// Finds the container (the pod's first when `container` is `None`) and its node agent.
///
/// # Errors
/// The pod or its node cannot be read, the container is unknown, the pod is not bound yet,
/// or its node has published no agent address.
pub fn locate(
    registry: &Registry,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> Result<ContainerTarget> {
    let Object::Pod(object) = registry.get(Kind::Pod, namespace, pod)? else {
        return Err(NodeClientError::NotReachable(format!(
            "{pod:?} is not a pod"
        )));
    };
    let names: Vec<String> = object
        .spec
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let container = match container {
        Some(c) if names.iter().any(|n| n == c) => c.to_string(),
        Some(c) => {
            return Err(NodeClientError::NoContainer {
                pod: pod.to_string(),
                container: c.to_string(),
                known: names,
            });
        }
        None => names.first().cloned().ok_or_else(|| {
            NodeClientError::NotReachable(format!("pod {pod:?} has no containers"))
        })?,
    };
    let node = &object.spec.node_name;
    if node.is_empty() {
        return Err(NodeClientError::NotReachable(format!(
            "pod {pod:?} is not scheduled to a node yet (phase {:?})",
            object.status.phase
        )));
    }
    let Object::Node(node) = registry.get(Kind::Node, "", node)? else {
        return Err(NodeClientError::NotReachable(format!(
            "node {node:?} is not a node"
        )));
    };
    if node.status.agent_address.is_empty() {
        return Err(NodeClientError::NotReachable(format!(
            "node {:?} has not published its agent address",
            node.metadata.name
        )));
    }
    Ok(ContainerTarget {
        pod: object,
        container,
        agent: node.status.agent_address,
    })
}

impl ContainerTarget {
    fn path(&self, verb: &str) -> String {
        let meta = &self.pod.metadata;
        format!(
            "/{verb}/{}/{}/{}",
            meta.namespace, meta.name, self.container
        )
    }

    fn open(&self, method: &str, path: &str, body: &[u8], what: &str) -> Result<http::Response> {
        let mut resp = http::request(&self.agent, method, path, body)?;
        if resp.status != 200 {
            return Err(NodeClientError::Agent(format!(
                "{what} of {}/{}: {}",
                self.pod.metadata.name,
                self.container,
                http::error_text(&mut resp)
            )));
        }
        Ok(resp)
    }
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The text, without its newline.
    pub text: String,
    /// The container wrote no newline after it (yet).
    pub partial: bool,
}

/// A container's log, line by line; ends when the log does, or with `follow` when the sandbox
/// goes away.
pub struct LogStream {
    lines: Lines<BufReader<Box<dyn std::io::Read + Send>>>,
}

impl Iterator for LogStream {
    type Item = Result<LogLine>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = match self.lines.next()? {
            Ok(line) => line,
            Err(e) => return Some(Err(NodeClientError::Agent(format!("reading the log: {e}")))),
        };
        let (text, partial) = decode_cri_line(&line);
        Some(Ok(LogLine {
            text: text.to_string(),
            partial,
        }))
    }
}

/// Opens a container's log; with `follow` it keeps streaming new lines.
///
/// # Errors
/// The agent cannot be reached or refuses.
pub fn logs(target: &ContainerTarget, follow: bool) -> Result<LogStream> {
    let mut path = target.path("logs");
    if follow {
        path.push_str("?follow=1");
    }
    let resp = target.open("GET", &path, b"", "logs")?;
    Ok(LogStream {
        lines: BufReader::new(resp.body).lines(),
    })
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

/// What an exec'd process did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Output, on stdout or (when `stderr`) stderr.
    Output {
        /// Written to stderr.
        stderr: bool,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The process ended: its exit code, or 128 + the signal that ended it.
    Exit(u8),
}

/// The events of an exec'd process; the last is [`ExecEvent::Exit`].
pub struct ExecStream {
    lines: Lines<BufReader<Box<dyn std::io::Read + Send>>>,
    what: String,
    ended: bool,
}

impl ExecStream {
    fn decode(&self, line: &str) -> Result<Option<ExecEvent>> {
        let bad = |why: String| NodeClientError::Agent(format!("{}: {why}", self.what));
        if line.trim().is_empty() {
            return Ok(None);
        }
        let event: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("{e}: {line:?}")))?;
        if let Some(exit) = event.get("exit") {
            let status = match exit.get("code").and_then(serde_json::Value::as_i64) {
                Some(code) => code,
                None => {
                    128 + exit
                        .get("signal")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(0)
                }
            };
            return Ok(Some(ExecEvent::Exit(
                u8::try_from(status.clamp(0, 255)).unwrap_or(u8::MAX),
            )));
        }
        if let Some(err) = event.get("error").and_then(serde_json::Value::as_str) {
            return Err(bad(err.to_string()));
        }
        let data = event
            .get("data")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| bad(format!("bad base64: {e}")))?;
        let stderr = event.get("stream").and_then(serde_json::Value::as_str) == Some("stderr");
        Ok(Some(ExecEvent::Output { stderr, data }))
    }
}

impl Iterator for ExecStream {
    type Item = Result<ExecEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.ended {
            let Some(line) = self.lines.next() else {
                self.ended = true;
                let why = format!("{}: the stream ended without an exit status", self.what);
                return Some(Err(NodeClientError::Agent(why)));
            };
            let decoded = line
                .map_err(|e| NodeClientError::Agent(format!("{}: {e}", self.what)))
                .and_then(|l| self.decode(&l));
            match decoded {
                Ok(None) => continue,
                Ok(Some(event)) => {
                    self.ended = matches!(event, ExecEvent::Exit(_));
                    return Some(Ok(event));
                }
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Runs `command` in the container and streams what it does.
///
/// # Errors
/// The agent cannot be reached or refuses.
pub fn exec(target: &ContainerTarget, command: &[String]) -> Result<ExecStream> {
    let body = serde_json::to_vec(command)
        .map_err(|e| NodeClientError::Agent(format!("encoding the command: {e}")))?;
    let resp = target.open("POST", &target.path("exec"), &body, "exec")?;
    Ok(ExecStream {
        lines: BufReader::new(resp.body).lines(),
        what: format!("exec in {}/{}", target.pod.metadata.name, target.container),
        ended: false,
    })
}

#[cfg(test)]
mod tests {
    use super::decode_cri_line;

    #[test]
    fn cri_lines_decode() {
        assert_eq!(
            decode_cri_line("2026-01-01T00:00:00Z stdout F hello world"),
            ("hello world", false)
        );
        assert_eq!(
            decode_cri_line("2026-01-01T00:00:00Z stderr P part"),
            ("part", true)
        );
        assert_eq!(decode_cri_line("not a cri line"), ("not a cri line", false));
    }
}
