//! The agent's request server: one connection from the host, requests handled concurrently.
//!
//! Requests that may block (wait, stop, destroy, create) run on their own thread and answer when
//! done; stdin is queued in arrival order on the main loop so bytes reach the process in order.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::container::{Container, Outbox};
use super::reaper::Reaper;
use crate::cgroup::Cgroup;
use crate::protocol::{
    AgentError, AgentMessage, ErrorKind, FrameReader, FrameWriter, HostMessage, PROTOCOL_VERSION,
    ProcessRef, ProtocolError, Reply, Request, read_hello, write_hello,
};

/// Everything a request handler may touch.
pub struct Agent {
    reaper: Arc<Reaper>,
    cgroup: Cgroup,
    out: Outbox,
    containers: Mutex<HashMap<String, Arc<Container>>>,
}

/// How the connection ended.
pub enum Ending {
    /// The host asked the sandbox to end.
    Shutdown,
    /// The host went away or broke the protocol.
    Lost(ProtocolError),
}

/// Performs the handshake on `stream` and serves it until shutdown or disconnect.
pub fn serve<S>(mut reader: S, mut writer: Box<dyn Write + Send>, reaper: Arc<Reaper>) -> Ending
where
    S: Read,
{
    let hello = match read_hello(&mut reader) {
        Ok(h) => h,
        Err(e) => return Ending::Lost(e),
    };
    if let Err(e) = write_hello(&mut writer, PROTOCOL_VERSION) {
        return Ending::Lost(e);
    }
    let mut out = FrameWriter::new(writer);
    if hello.version != PROTOCOL_VERSION {
        let e = ProtocolError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: hello.version,
        };
        let _ = out.write(&AgentMessage::Refused {
            reason: e.to_string(),
        });
        return Ending::Lost(e);
    }

    let cgroup = match Cgroup::current().and_then(|c| c.delegate().map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            let _ = out.write(&AgentMessage::Refused {
                reason: format!("agent cgroup: {e}"),
            });
            return Ending::Lost(ProtocolError::Closed);
        }
    };
    let agent = Arc::new(Agent {
        reaper,
        cgroup,
        out: Arc::new(Mutex::new(out)),
        containers: Mutex::new(HashMap::new()),
    });

    let mut frames = FrameReader::new(reader);
    loop {
        let msg = match frames.read::<HostMessage>() {
            Ok(m) => m,
            Err(e) => {
                agent.destroy_all();
                return Ending::Lost(e);
            }
        };
        let HostMessage::Request { id, request } = msg;
        match request {
            Request::Stdin { process, data } => {
                let r = agent.stdin(&process, Some(data));
                agent.respond(id, r);
            }
            Request::CloseStdin { process } => {
                let r = agent.stdin(&process, None);
                agent.respond(id, r);
            }
            Request::Shutdown => {
                agent.destroy_all();
                agent.respond(id, Ok(Reply::Done));
                return Ending::Shutdown;
            }
            other => {
                let a = agent.clone();
                thread::spawn(move || {
                    let r = a.handle(other);
                    a.respond(id, r);
                });
            }
        }
    }
}

fn not_found(what: impl std::fmt::Display) -> AgentError {
    AgentError::new(ErrorKind::NotFound, format!("no {what}"))
}

impl Agent {
    fn respond(&self, id: u64, result: Result<Reply, AgentError>) {
        let _ = self
            .out
            .lock()
            .expect("outbox lock")
            .write(&AgentMessage::Response { id, result });
    }

    fn container(&self, id: &str) -> Result<Arc<Container>, AgentError> {
        let map = self.containers.lock().expect("containers lock");
        map.get(id)
            .cloned()
            .ok_or_else(|| not_found(format_args!("container {id}")))
    }

    fn handle(&self, request: Request) -> Result<Reply, AgentError> {
        match request {
            Request::Create(spec) => {
                if spec.id.is_empty() || spec.id.contains('/') {
                    return Err(AgentError::new(
                        ErrorKind::InvalidArgument,
                        "bad container id",
                    ));
                }
                if self
                    .containers
                    .lock()
                    .expect("containers lock")
                    .contains_key(&spec.id)
                {
                    return Err(AgentError::new(
                        ErrorKind::AlreadyExists,
                        format!("container {} exists", spec.id),
                    ));
                }
                let c = Container::create(&spec, &self.cgroup, &self.reaper, &self.out)?;
                self.containers
                    .lock()
                    .expect("containers lock")
                    .insert(spec.id, c);
                Ok(Reply::Done)
            }
            Request::Start { container } => self
                .container(&container)?
                .start(&container, &self.out)
                .map(|()| Reply::Done),
            Request::Exec {
                container,
                exec_id,
                process,
            } => self
                .container(&container)?
                .exec(&container, &exec_id, &process, &self.reaper, &self.out)
                .map(|()| Reply::Done),
            Request::Signal { process, signal } => {
                let p = self.process(&process)?;
                let pid = *p.pid.lock().expect("pid lock");
                if pid == 0 || p.exit.get().is_some() {
                    return Err(AgentError::new(
                        ErrorKind::InvalidState,
                        "process is not running",
                    ));
                }
                super::sys::kill(pid, signal)
                    .map(|()| Reply::Done)
                    .map_err(|e| AgentError::new(ErrorKind::System, e.to_string()))
            }
            Request::Wait { process } => {
                let p = self.process(&process)?;
                Ok(Reply::Exited(
                    p.exit
                        .wait(None)
                        .expect("wait without timeout has a status"),
                ))
            }
            Request::Stats { container } => self
                .container(&container)?
                .cgroup
                .stats()
                .map(Reply::Stats)
                .map_err(|e| AgentError::new(ErrorKind::System, e.to_string())),
            Request::Stop {
                container,
                grace_ms,
            } => {
                let c = self.container(&container)?;
                Ok(Reply::Exited(c.stop(Duration::from_millis(grace_ms))?))
            }
            Request::Destroy { container } => {
                let c = self.container(&container)?;
                c.destroy()?;
                self.containers
                    .lock()
                    .expect("containers lock")
                    .remove(&container);
                Ok(Reply::Done)
            }
            Request::Stdin { .. } | Request::CloseStdin { .. } | Request::Shutdown => {
                unreachable!("handled on the connection loop")
            }
        }
    }

    fn process(&self, r: &ProcessRef) -> Result<Arc<super::container::Process>, AgentError> {
        self.container(&r.container)?
            .process(r.exec_id.as_deref())
            .ok_or_else(|| not_found(format_args!("process {r:?}")))
    }

    fn stdin(&self, r: &ProcessRef, data: Option<Vec<u8>>) -> Result<Reply, AgentError> {
        let p = self.process(r)?;
        let mut stdin = p.stdin.lock().expect("stdin lock");
        let closing = data.is_none();
        let Some(tx) = stdin.as_ref() else {
            return Err(AgentError::new(
                ErrorKind::InvalidState,
                "stdin is not open",
            ));
        };
        let _ = tx.send(data);
        if closing {
            *stdin = None;
        }
        Ok(Reply::Done)
    }

    fn destroy_all(&self) {
        let all: Vec<_> = self
            .containers
            .lock()
            .expect("containers lock")
            .drain()
            .collect();
        for (_, c) in all {
            let _ = c.destroy();
        }
    }
}
