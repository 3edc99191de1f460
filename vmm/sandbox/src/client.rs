//! The host's end of the agent protocol: requests by id, output and exit events by process.
//!
//! One reader thread per connection routes each response to the caller waiting on its id, and
//! each output or exit event to the log sink and to the subscribers of its process.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use podvisor_agent::protocol::{
    AgentError, AgentMessage, ExitStatus, FrameReader, FrameWriter, HostMessage, PROTOCOL_VERSION,
    ProcessRef, ProtocolError, Reply, Request, Stream, read_hello, write_hello,
};

use crate::SandboxError;

/// What happens to a process, as a subscriber sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// Bytes on stdout or stderr.
    Output(Stream, Vec<u8>),
    /// The end; every output byte came before.
    Exited(ExitStatus),
}

/// Receives every output chunk of every process (the log writer).
pub type OutputSink = Arc<dyn Fn(&ProcessRef, Stream, &[u8]) + Send + Sync>;

type Pending = Mutex<HashMap<u64, Sender<Result<Reply, AgentError>>>>;

struct Shared {
    pending: Pending,
    subscribers: Mutex<HashMap<ProcessRef, Vec<Sender<ProcessEvent>>>>,
    closed: Mutex<Option<String>>,
    sink: OutputSink,
}

/// A connection to one agent.
pub struct AgentClient {
    writer: Mutex<FrameWriter<Box<dyn Write + Send>>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl AgentClient {
    /// Performs the handshake on a byte stream and starts routing the agent's messages.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::VersionMismatch`] when the agent speaks another version, or the error
    /// of the stream.
    pub fn connect(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        sink: OutputSink,
    ) -> Result<Self, SandboxError> {
        Self::connect_with_version(reader, writer, sink, PROTOCOL_VERSION)
    }

    /// Like [`AgentClient::connect`], announcing `version`; for testing version checks.
    #[doc(hidden)]
    pub fn connect_with_version(
        mut reader: Box<dyn Read + Send>,
        mut writer: Box<dyn Write + Send>,
        sink: OutputSink,
        version: u32,
    ) -> Result<Self, SandboxError> {
        write_hello(&mut writer, version)?;
        let hello = read_hello(&mut reader)?;
        let mut frames = FrameReader::new(reader);
        if hello.version != version {
            let reason = match frames.read::<AgentMessage>() {
                Ok(AgentMessage::Refused { reason }) => reason,
                _ => String::new(),
            };
            tracing::warn!(ours = version, agent = hello.version, %reason, "agent refused");
            return Err(ProtocolError::VersionMismatch {
                ours: version,
                theirs: hello.version,
            }
            .into());
        }

        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            subscribers: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            sink,
        });
        let s = shared.clone();
        let reader = thread::Builder::new()
            .name("agent-reader".into())
            .spawn(move || route(frames, &s))
            .map_err(|e| SandboxError::host("starting the agent reader", "", e))?;
        Ok(Self {
            writer: Mutex::new(FrameWriter::new(writer)),
            shared,
            next_id: AtomicU64::new(1),
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Sends a request and waits for its answer.
    ///
    /// # Errors
    ///
    /// The agent's error, or [`SandboxError::Disconnected`] when the connection ends first.
    pub fn request(&self, request: Request) -> Result<Reply, SandboxError> {
        let rx = self.send(request)?;
        match rx.recv() {
            Ok(r) => Ok(r?),
            Err(_) => Err(self.disconnected()),
        }
    }

    /// Like [`AgentClient::request`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// As [`AgentClient::request`], plus [`SandboxError::Timeout`].
    pub fn request_timeout(
        &self,
        request: Request,
        what: &'static str,
        timeout: Duration,
    ) -> Result<Reply, SandboxError> {
        let rx = self.send(request)?;
        match rx.recv_timeout(timeout) {
            Ok(r) => Ok(r?),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(SandboxError::Timeout {
                what,
                secs: timeout.as_secs(),
            }),
            Err(_) => Err(self.disconnected()),
        }
    }

    fn send(&self, request: Request) -> Result<Receiver<Result<Reply, AgentError>>, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = channel();
        {
            let mut pending = self.shared.pending.lock().expect("pending lock");
            if self.shared.closed.lock().expect("closed lock").is_some() {
                return Err(self.disconnected());
            }
            pending.insert(id, tx);
        }
        let sent = self
            .writer
            .lock()
            .expect("writer lock")
            .write(&HostMessage::Request { id, request });
        if let Err(e) = sent {
            self.shared
                .pending
                .lock()
                .expect("pending lock")
                .remove(&id);
            return Err(e.into());
        }
        Ok(rx)
    }

    /// Subscribes to the output and exit of a process. Subscribe before starting it to see all
    /// of its output.
    pub fn subscribe(&self, process: &ProcessRef) -> Receiver<ProcessEvent> {
        let (tx, rx) = channel();
        let mut subs = self.shared.subscribers.lock().expect("subscribers lock");
        subs.entry(process.clone()).or_default().push(tx);
        rx
    }

    fn disconnected(&self) -> SandboxError {
        let why = self.shared.closed.lock().expect("closed lock").clone();
        SandboxError::Disconnected(why.unwrap_or_else(|| "connection closed".into()))
    }

    /// Waits for the reader thread after the agent closed the connection.
    pub fn join(&self) {
        if let Some(r) = self.reader.lock().expect("reader lock").take() {
            let _ = r.join();
        }
    }
}

fn route(mut frames: FrameReader<Box<dyn Read + Send>>, shared: &Shared) {
    let why = loop {
        let msg = match frames.read::<AgentMessage>() {
            Ok(m) => m,
            Err(ProtocolError::Closed) => break "agent closed the connection".to_owned(),
            Err(e) => break e.to_string(),
        };
        match msg {
            AgentMessage::Response { id, result } => {
                if let Some(tx) = shared.pending.lock().expect("pending lock").remove(&id) {
                    let _ = tx.send(result);
                }
            }
            AgentMessage::Output {
                process,
                stream,
                data,
            } => {
                (shared.sink)(&process, stream, &data);
                publish(shared, &process, ProcessEvent::Output(stream, data), false);
            }
            AgentMessage::Exited { process, status } => {
                publish(shared, &process, ProcessEvent::Exited(status), true);
            }
            AgentMessage::Refused { reason } => break reason,
        }
    };
    tracing::debug!(reason = %why, "agent connection ended");
    *shared.closed.lock().expect("closed lock") = Some(why);
    // Dropping the senders wakes every caller still waiting.
    shared.pending.lock().expect("pending lock").clear();
    shared.subscribers.lock().expect("subscribers lock").clear();
}

fn publish(shared: &Shared, process: &ProcessRef, event: ProcessEvent, last: bool) {
    let mut subs = shared.subscribers.lock().expect("subscribers lock");
    if let Some(list) = subs.get_mut(process) {
        list.retain(|tx| tx.send(event.clone()).is_ok());
        if last {
            subs.remove(process);
        }
    }
}
