//! The node agent's HTTP server: container logs and exec for the CLI, as kubelet serves them.
//!
//! - `GET /logs/<namespace>/<pod>/<container>[?follow=1]` streams the container's log in the
//!   CRI format the sandbox writes (`<time> <stream> <F|P> <text>` lines); with `follow` it
//!   keeps streaming until the client goes away or the pod's sandbox is removed.
//! - `POST /exec/<namespace>/<pod>/<container>` with a JSON array of arguments runs a process
//!   in the container and streams newline-delimited JSON events: `{"stream": "stdout",
//!   "data": "<base64>"}` for output and `{"exit": {"code": N}}` or `{"exit": {"signal": N}}`
//!   at the end.
//!
//! Errors are answered with a status code and a one-line reason.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use base64::Engine;
use podvisor_sandbox::{ExitStatus, LogFollower, ProcessEvent, ProcessSpec, Stream};

use super::{LiveSandboxes, NodeAgentConfig};

/// The server, bound and ready to run.
pub struct Server {
    http: tiny_http::Server,
    address: SocketAddr,
    sandboxes_dir: PathBuf,
    live: LiveSandboxes,
}

impl Server {
    /// Binds the server to `config.listen`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn bind(config: &NodeAgentConfig, live: LiveSandboxes) -> std::io::Result<Server> {
        let http = tiny_http::Server::http(config.listen).map_err(std::io::Error::other)?;
        let address = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("the server has no IP address"))?;
        Ok(Server {
            http,
            address,
            sandboxes_dir: config.state_dir.join("sandboxes"),
            live,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves requests until `stop`, each on its own thread.
    pub fn run(self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            let request = match self.http.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(_) => break,
            };
            let dir = self.sandboxes_dir.clone();
            let live = self.live.clone();
            let _ = std::thread::Builder::new()
                .name("node-request".into())
                .spawn(move || handle(request, &dir, &live));
        }
    }
}

fn handle(mut request: tiny_http::Request, dir: &Path, live: &LiveSandboxes) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (request.method(), parts.as_slice()) {
        (tiny_http::Method::Get, ["logs", ns, pod, container]) => {
            logs(dir, ns, pod, container, query.contains("follow=1"))
                .map(|body| (body, "text/plain"))
        }
        (tiny_http::Method::Post, ["exec", ns, pod, container]) => {
            let mut body = String::new();
            let args: Result<Vec<String>, String> = request
                .as_reader()
                .read_to_string(&mut body)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    serde_json::from_str(&body)
                        .map_err(|e| format!("the body must be a JSON array of arguments: {e}"))
                });
            args.map_err(|e| (400, e))
                .and_then(|args| exec(dir, live, ns, pod, container, args))
                .map(|body| (body, "application/x-ndjson"))
        }
        _ => Err((
            404,
            format!("no such endpoint: {} {path}", request.method()),
        )),
    };
    let response = match result {
        Ok((body, kind)) => {
            stream(request.into_writer(), body, kind);
            return;
        }
        Err((code, reason)) => {
            let text = format!("{reason}\n").into_bytes();
            let len = text.len();
            tiny_http::Response::new(
                tiny_http::StatusCode(code),
                vec![content_type("text/plain")],
                Box::new(std::io::Cursor::new(text)) as Box<dyn Read + Send>,
                Some(len),
                None,
            )
        }
    };
    let _ = request.respond(response);
}

/// Writes a 200 response whose body is sent chunk by chunk as `body` yields it, flushed each
/// time: tiny_http's own chunked writer holds back 8 KiB, which would stall `logs -f` and
/// exec output until that much had accumulated.
fn stream(mut out: Box<dyn std::io::Write + Send>, mut body: Box<dyn Read + Send>, kind: &str) {
    use std::io::Write;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = out
            .write_all(format!("{n:x}\r\n").as_bytes())
            .and_then(|()| out.write_all(&buf[..n]))
            .and_then(|()| out.write_all(b"\r\n"))
            .and_then(|()| out.flush());
        if chunk.is_err() {
            // The client went away: stop reading, which ends a follow or an exec stream.
            return;
        }
    }
    let _ = out.write_all(b"0\r\n\r\n").and_then(|()| out.flush());
}

fn content_type(kind: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes()).unwrap_or_else(|()| {
        tiny_http::Header::from_bytes(&b"X-Invalid"[..], &b"1"[..])
            .expect("constant header is valid")
    })
}

/// The newest sandbox directory of a pod on this node.
fn sandbox_dir(dir: &Path, ns: &str, pod: &str) -> Option<PathBuf> {
    let prefix = format!("{ns}_{pod}_");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

type Body = Box<dyn Read + Send>;

fn logs(
    dir: &Path,
    ns: &str,
    pod: &str,
    container: &str,
    follow: bool,
) -> Result<Body, (u16, String)> {
    let sandbox = sandbox_dir(dir, ns, pod)
        .ok_or_else(|| (404, format!("pod {ns}/{pod} has no sandbox on this node")))?;
    let path = sandbox.join("logs").join(format!("{container}.log"));
    if !path.exists() && !follow {
        return Err((
            404,
            format!("container {container:?} of pod {ns}/{pod} has no log"),
        ));
    }
    Ok(Box::new(LogStream {
        follower: LogFollower::new(&path),
        sandbox,
        follow,
        pending: Vec::new(),
    }))
}

/// A log as a byte stream: what is there, then (when following) what comes.
struct LogStream {
    follower: LogFollower,
    sandbox: PathBuf,
    follow: bool,
    pending: Vec<u8>,
}

impl Read for LogStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            let chunk = self.follower.next_chunk(Duration::from_millis(500))?;
            if chunk.is_empty() && (!self.follow || !self.sandbox.exists()) {
                return Ok(0);
            }
            self.pending = chunk;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

fn exec(
    dir: &Path,
    live: &LiveSandboxes,
    ns: &str,
    pod: &str,
    container: &str,
    args: Vec<String>,
) -> Result<Body, (u16, String)> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    if args.is_empty() {
        return Err((400, "exec needs a command".into()));
    }
    let sandbox_path = sandbox_dir(dir, ns, pod)
        .ok_or_else(|| (404, format!("pod {ns}/{pod} has no sandbox on this node")))?;
    let id = sandbox_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sandbox = live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .find(|s| s.id() == id)
        .cloned()
        .ok_or_else(|| (409, format!("pod {ns}/{pod} is not running")))?;
    let exec_id = format!("exec-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let process = podvisor_sandbox::ProcessRef::exec(container, &exec_id);
    let spec = ProcessSpec {
        args,
        ..ProcessSpec::default()
    };
    let events = sandbox.subscribe(&process);
    sandbox
        .exec(container, &exec_id, spec)
        .map_err(|e| (409, super::pod_worker::error_chain(&e)))?;
    Ok(Box::new(ExecStream {
        events,
        pending: Vec::new(),
        done: false,
    }))
}

/// Exec events as newline-delimited JSON.
struct ExecStream {
    events: Receiver<ProcessEvent>,
    pending: Vec<u8>,
    done: bool,
}

impl Read for ExecStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            if self.done {
                return Ok(0);
            }
            let line = match self.events.recv_timeout(Duration::from_secs(3600)) {
                Ok(ProcessEvent::Output(stream, data)) => serde_json::json!({
                    "stream": if stream == Stream::Stderr { "stderr" } else { "stdout" },
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                }),
                Ok(ProcessEvent::Exited(status)) => {
                    self.done = true;
                    match status {
                        ExitStatus::Code(c) => serde_json::json!({"exit": {"code": c}}),
                        ExitStatus::Signal { signal, .. } => {
                            serde_json::json!({"exit": {"signal": signal}})
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    serde_json::json!({"error": "the sandbox went away"})
                }
            };
            self.pending = format!("{line}\n").into_bytes();
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}
