//! The store's error type.
//!
//! One enum for the whole crate: a caller of the client, of a master, or of the storage layer
//! matches on [`StoreError`] to tell a retryable condition (no leader, timeout) from a final one
//! (compacted revision, corrupt data, wrong cluster).

use std::path::PathBuf;

/// What went wrong in the replicated store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O operation on a file or socket failed.
    #[error("I/O failed while {context}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The raft log engine reported an error (this includes a corrupt log file).
    #[error("raft log engine at {path} failed")]
    LogEngine {
        /// Directory of the log.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: raft_engine::Error,
    },
    /// The consensus module refused an operation.
    #[error("raft refused the operation")]
    Raft(#[from] raft::Error),
    /// Data read back from disk failed its checksum or could not be decoded.
    #[error("corrupt data in {path}: {reason}")]
    Corrupt {
        /// The file holding the bad data.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// A peer or client announced a different cluster id.
    #[error("peer belongs to cluster {got:#x}, this master to cluster {expected:#x}")]
    WrongCluster {
        /// This master's cluster id.
        expected: u64,
        /// The id the other side sent.
        got: u64,
    },
    /// A message read from the network could not be decoded.
    #[error("malformed message from {from}: {reason}")]
    MalformedMessage {
        /// Remote address or peer id.
        from: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The member asked is not the leader; `leader` names the one it knows, if any.
    #[error("not the leader (known leader: {leader:?})")]
    NotLeader {
        /// Client address of the current leader, when known.
        leader: Option<String>,
    },
    /// The requested revision is below the compaction point.
    #[error("revision has been compacted; the compaction point is {compact_revision}")]
    Compacted {
        /// The current compaction revision.
        compact_revision: u64,
    },
    /// The requested revision is above the current revision.
    #[error("revision {revision} is in the future; the current revision is {current}")]
    FutureRevision {
        /// The revision asked for.
        revision: u64,
        /// The store's current revision.
        current: u64,
    },
    /// No lease with this id exists (it expired, was revoked, or never existed).
    #[error("lease {0:#x} not found")]
    LeaseNotFound(u64),
    /// A lease with this id already exists.
    #[error("lease {0:#x} already exists")]
    LeaseExists(u64),
    /// The operation did not complete in time; for a write the outcome is unknown.
    #[error("{0} timed out")]
    Timeout(String),
    /// A write was sent but no answer came back before the deadline: it may or may not have
    /// been applied.
    #[error("outcome of the write is unknown: {0}")]
    OutcomeUnknown(String),
    /// No member could be reached.
    #[error("no member of the cluster is reachable: {0}")]
    Unavailable(String),
    /// The request is not valid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A master's or a client's configuration is not valid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The master is shutting down.
    #[error("the master is stopping")]
    Stopped,
    /// The raft loop met a condition it cannot go on from (raft-rs gave up on a message, or a
    /// bug); the master stops rather than serve from a state it no longer trusts.
    #[error("the raft loop stopped on a fatal condition: {0}")]
    Fatal(String),
}

impl StoreError {
    /// Wraps an I/O error with what the store was doing.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether a client may retry the operation on another member or later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::NotLeader { .. }
                | StoreError::Timeout(_)
                | StoreError::Unavailable(_)
                | StoreError::Io { .. }
                | StoreError::Stopped
        )
    }
}

/// The store's result type.
pub type Result<T> = std::result::Result<T, StoreError>;
