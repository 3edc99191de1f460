//! The messages of protocol version 1.

use serde::{Deserialize, Serialize};

/// A message from the host to the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HostMessage {
    /// A request the agent answers with one [`AgentMessage::Response`] of the same id.
    Request {
        /// Chosen by the host, unique among its requests in flight.
        id: u64,
        /// What to do.
        request: Request,
    },
}

/// A message from the agent to the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AgentMessage {
    /// The answer to the request with the same id.
    Response {
        /// The id of the request.
        id: u64,
        /// Its outcome.
        result: Result<Reply, AgentError>,
    },
    /// Bytes a process wrote to its stdout or stderr, in order per stream.
    Output {
        /// The process that wrote them.
        process: ProcessRef,
        /// Which stream.
        stream: Stream,
        /// The bytes, at most [`crate::protocol::MAX_CHUNK_LEN`].
        data: Vec<u8>,
    },
    /// A process ended; every byte of its output was sent before this.
    Exited {
        /// The process.
        process: ProcessRef,
        /// How it ended.
        status: ExitStatus,
    },
    /// The agent refuses the connection (for example a version mismatch) and closes it.
    Refused {
        /// Why, for a person to read.
        reason: String,
    },
}

/// One operation on the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Prepare a container: namespaces, root, cgroup. Its process waits for [`Request::Start`].
    Create(ContainerSpec),
    /// Start the process of a created container.
    Start {
        /// The container.
        container: String,
    },
    /// Run another process in a running container.
    Exec {
        /// The container.
        container: String,
        /// A name for the process, unique within the container.
        exec_id: String,
        /// What to run.
        process: ProcessSpec,
    },
    /// Write bytes to the stdin of a process.
    Stdin {
        /// The process.
        process: ProcessRef,
        /// The bytes, at most [`crate::protocol::MAX_CHUNK_LEN`].
        data: Vec<u8>,
    },
    /// Close the stdin of a process.
    CloseStdin {
        /// The process.
        process: ProcessRef,
    },
    /// Send a signal to a process.
    Signal {
        /// The process.
        process: ProcessRef,
        /// The signal number.
        signal: i32,
    },
    /// Answer once the process has ended (immediately if it already has).
    Wait {
        /// The process.
        process: ProcessRef,
    },
    /// CPU and memory use of a container.
    Stats {
        /// The container.
        container: String,
    },
    /// Send SIGTERM to the container's process, then SIGKILL to all of it after the grace period.
    Stop {
        /// The container.
        container: String,
        /// How long to wait after SIGTERM, in milliseconds.
        grace_ms: u64,
    },
    /// Kill what is left of a container and release its namespaces, mounts and cgroup.
    Destroy {
        /// The container.
        container: String,
    },
    /// End the sandbox: the agent kills every container and exits, or powers the VM off.
    Shutdown,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The request was carried out.
    Done,
    /// The process ended like this.
    Exited(ExitStatus),
    /// Resource use of a container.
    Stats(ContainerStats),
}

/// Why the agent could not carry out a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct AgentError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// What failed, with which input.
    pub message: String,
}

/// Classes of [`AgentError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// No container or process of that name.
    NotFound,
    /// A container or process of that name already exists.
    AlreadyExists,
    /// The request does not fit the state (for example exec into a container never started).
    InvalidState,
    /// The request itself is wrong (bad path, unknown user, empty command).
    InvalidArgument,
    /// The operating system refused (namespaces, mounts, cgroups, exec).
    System,
}

impl AgentError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Names a process: the container's own process, or one started by [`Request::Exec`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessRef {
    /// The container.
    pub container: String,
    /// `None` for the container's process, else the exec id.
    pub exec_id: Option<String>,
}

impl ProcessRef {
    /// The main process of `container`.
    pub fn main(container: &str) -> Self {
        Self {
            container: container.to_owned(),
            exec_id: None,
        }
    }

    /// The exec'd process `exec_id` of `container`.
    pub fn exec(container: &str, exec_id: &str) -> Self {
        Self {
            container: container.to_owned(),
            exec_id: Some(exec_id.to_owned()),
        }
    }
}

/// An output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A container to create.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The container's name, unique in the sandbox.
    pub id: String,
    /// The root filesystem, a directory as the agent sees it.
    pub rootfs: String,
    /// The host name inside the container (its own UTS namespace).
    pub hostname: String,
    /// The container's process.
    pub process: ProcessSpec,
    /// Resource limits.
    pub limits: Limits,
}

/// A process to run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// The program and its arguments; a program without `/` is searched in `PATH`.
    pub args: Vec<String>,
    /// `NAME=value` pairs, the whole environment.
    pub env: Vec<String>,
    /// Working directory inside the container; empty means `/`.
    pub cwd: String,
    /// `uid[:gid]` or a user name from the rootfs's `/etc/passwd`; empty means root.
    pub user: String,
    /// Whether the host will send stdin; if not, stdin reads from `/dev/null`.
    pub stdin: bool,
}

/// Resource limits of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in thousandths of a CPU.
    pub cpu_millis: Option<u64>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal {
        /// The signal number.
        signal: i32,
        /// The kernel killed it because its container ran out of memory.
        oom_killed: bool,
    },
}

impl ExitStatus {
    /// Decodes a raw `waitpid` status.
    pub fn from_wait_status(raw: i32) -> Self {
        if libc::WIFSIGNALED(raw) {
            Self::Signal {
                signal: libc::WTERMSIG(raw),
                oom_killed: false,
            }
        } else {
            Self::Code(libc::WEXITSTATUS(raw))
        }
    }

    /// True when the process was killed for memory (reported as `OOMKilled`).
    pub fn oom_killed(&self) -> bool {
        matches!(
            self,
            Self::Signal {
                oom_killed: true,
                ..
            }
        )
    }
}

/// Resource use of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, in bytes.
    pub memory_bytes: u64,
    /// Times the memory limit made the kernel kill a process.
    pub oom_kills: u64,
}
