//! The errors of the sandbox layer.

use std::io;
use std::path::PathBuf;

use podvisor_agent::protocol::{AgentError, ProtocolError};

use crate::Isolation;
use crate::image::ImageError;
use crate::network::NetworkError;

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The backend cannot run on this host.
    #[error("{isolation} sandboxes cannot run on this host: {reason}")]
    Refused {
        /// The isolation level asked for.
        isolation: Isolation,
        /// What the host lacks.
        reason: String,
    },
    /// The agent refused or failed the request.
    #[error("agent: {0}")]
    Agent(#[from] AgentError),
    /// The connection to the agent failed.
    #[error("agent connection")]
    Protocol(#[from] ProtocolError),
    /// The agent went away.
    #[error("agent connection lost: {0}")]
    Disconnected(String),
    /// The agent did not answer in time.
    #[error("agent did not answer {what} within {secs} s")]
    Timeout {
        /// The request.
        what: &'static str,
        /// The time allowed.
        secs: u64,
    },
    /// A container's image could not be used.
    #[error("image of container {container}")]
    Image {
        /// The container.
        container: String,
        /// The cause.
        #[source]
        source: ImageError,
    },
    /// Setting up or tearing down the sandbox network failed.
    #[error("sandbox network")]
    Network(#[from] NetworkError),
    /// The caller passed something unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A sandbox id or container name is not a valid name (lower-case letters, digits, `-`,
    /// `_` and `.`, starting with a letter or digit).
    #[error("invalid argument: {what} {name:?}")]
    InvalidName {
        /// What the name is for: `"sandbox id"` or `"container name"`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// A sandbox or container of that name already exists.
    #[error("{what} {name} exists")]
    AlreadyExists {
        /// `"sandbox"` or `"container"`.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// A host operation failed.
    #[error("{what} ({path})")]
    Host {
        /// What was being done.
        what: &'static str,
        /// On which file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    pub(crate) fn host(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Host {
            what,
            path: path.into(),
            source,
        }
    }
}
