//! The CLI's errors: each one is printed as a single line on stderr, and the process exits
//! non-zero.

use podvisor_cluster::registry::RegistryError;
use podvisor_store::StoreError;

/// What went wrong running a verb.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments make no sense together, or name something unknown.
    #[error("{0}")]
    Usage(String),
    /// No master answered at any endpoint.
    #[error("cannot reach the masters at {endpoints}: {reason}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        reason: String,
    },
    /// A store request failed.
    #[error("store request failed: {0}")]
    Store(String),
    /// An object request failed.
    #[error("{0}")]
    Registry(String),
    /// A manifest could not be read or parsed.
    #[error("{0}")]
    Manifest(String),
    /// A host operation (files, processes, sockets) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A node agent refused or failed a logs or exec request.
    #[error("{0}")]
    Agent(String),
    /// Waiting for something ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Something else failed, with its reason.
    #[error("{0}")]
    Failed(String),
    /// The verb ran and wants this exit status (exec passes on its process's), with nothing
    /// more to say.
    #[error("exit status {0}")]
    Exit(u8),
}

impl CliError {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Joins an error and its sources into one line.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Store(one_line(&e))
    }
}

impl From<RegistryError> for CliError {
    fn from(e: RegistryError) -> Self {
        CliError::Registry(one_line(&e))
    }
}

/// The CLI's result type.
pub type Result<T> = std::result::Result<T, CliError>;
