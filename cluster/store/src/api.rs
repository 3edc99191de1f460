//! The key-value model's public types: what a client sends and what it gets back.
//!
//! These mirror etcd's v3 model closely, so that people who know etcd find their way: every
//! write gets one cluster revision, every key carries its create revision, mod revision and
//! version, and a range is `[key, range_end)` with an empty `range_end` meaning "just `key`".

use serde::{Deserialize, Serialize};

/// One key and its value at its latest revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: u64,
    /// Revision of the last write to the key.
    pub mod_revision: u64,
    /// Number of writes since the key was created; 1 after creation.
    pub version: u64,
    /// Lease the key is attached to, 0 for none.
    pub lease: u64,
}

/// A set of keys: `key` alone, or the interval `[key, range_end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// First key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// End of the interval, exclusive. Empty means the single key `key`; `[0]` means every key
    /// at or after `key`.
    #[serde(with = "serde_bytes")]
    pub range_end: Vec<u8>,
}

impl KeyRange {
    /// The single key `key`.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            key: key.into(),
            range_end: Vec::new(),
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let range_end = prefix_end(&key);
        KeyRange { key, range_end }
    }

    /// The interval `[start, end)`.
    pub fn interval(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            key: start.into(),
            range_end: end.into(),
        }
    }

    /// Whether `k` falls in this range.
    pub fn contains(&self, k: &[u8]) -> bool {
        if self.range_end.is_empty() {
            return k == self.key.as_slice();
        }
        if k < self.key.as_slice() {
            return false;
        }
        self.range_end == [0] || k < self.range_end.as_slice()
    }
}

/// The smallest key greater than every key that starts with `prefix`; `[0]` (all keys) when no
/// such key exists.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Write `value` at `key`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Lease to attach the key to, 0 for none.
    pub lease: u64,
    /// Return the previous key-value pair.
    pub prev_kv: bool,
}

/// Result of a put.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    /// The store revision after the put.
    pub revision: u64,
    /// The previous pair, when asked for and present.
    pub prev_kv: Option<KeyValue>,
}

/// Read keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// Keys to read.
    pub range: KeyRange,
    /// At most this many pairs, 0 for no limit.
    pub limit: usize,
    /// Return only the count.
    pub count_only: bool,
    /// Serve from the member's local state, without a ReadIndex round (may be stale).
    pub serializable: bool,
}

/// Result of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The store revision the read saw.
    pub revision: u64,
    /// Pairs in key order.
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range (ignoring the limit).
    pub count: usize,
    /// Whether the limit cut the answer short.
    pub more: bool,
}

/// Delete keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// Keys to delete.
    pub range: KeyRange,
    /// Return the deleted pairs.
    pub prev_kv: bool,
}

/// Result of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResponse {
    /// The store revision after the delete.
    pub revision: u64,
    /// Number of keys deleted.
    pub deleted: usize,
    /// The deleted pairs, when asked for.
    pub prev_kvs: Vec<KeyValue>,
}

/// What a [`Compare`] looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The value (a missing key never compares true).
    Value(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The version (0 for a missing key).
    Version(u64),
    /// The create revision (0 for a missing key).
    CreateRevision(u64),
    /// The mod revision (0 for a missing key).
    ModRevision(u64),
    /// The lease (0 for none).
    Lease(u64),
}

/// How a [`Compare`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    /// Equal.
    Equal,
    /// Not equal.
    NotEqual,
    /// The key's attribute is greater than the given one.
    Greater,
    /// The key's attribute is less than the given one.
    Less,
}

/// One condition of a transaction, on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The comparison.
    pub op: CompareOp,
    /// The attribute and the value it is compared with.
    pub target: CompareTarget,
}

impl Compare {
    /// `key`'s value equals `value`.
    pub fn value_equals(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::Value(value.into()),
        }
    }

    /// `key`'s version equals `version` (0: the key does not exist).
    pub fn version_equals(key: impl Into<Vec<u8>>, version: u64) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::Version(version),
        }
    }

    /// `key`'s mod revision equals `revision`.
    pub fn mod_revision_equals(key: impl Into<Vec<u8>>, revision: u64) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(revision),
        }
    }
}

/// One operation inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// A put.
    Put(PutRequest),
    /// A read (served from the transaction's own view).
    Range(RangeRequest),
    /// A delete.
    Delete(DeleteRequest),
}

/// Result of one operation inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOpResponse {
    /// Result of a put.
    Put(PutResponse),
    /// Result of a read.
    Range(RangeResponse),
    /// Result of a delete.
    Delete(DeleteResponse),
}

/// A transaction: if every compare holds, apply `success`, else `failure`, atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Conditions, all of which must hold.
    pub compares: Vec<Compare>,
    /// Operations applied when they hold.
    pub success: Vec<TxnOp>,
    /// Operations applied otherwise.
    pub failure: Vec<TxnOp>,
}

/// Result of a transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    /// Whether the compares held.
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: u64,
    /// One result per applied operation.
    pub responses: Vec<TxnOpResponse>,
}

/// Kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted (`kv` holds the key and the delete's revision).
    Delete,
}

/// One change to one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The pair after the change; for a delete, the key with `mod_revision` the delete's.
    pub kv: KeyValue,
    /// The pair before the change, when the watch asked for it.
    pub prev_kv: Option<KeyValue>,
}

/// What to watch, and from where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// Keys to watch.
    pub range: KeyRange,
    /// First revision to deliver; 0 for "changes after now".
    pub start_revision: u64,
    /// Include the previous pair in each event.
    pub prev_kv: bool,
    /// Send progress notifications while idle.
    pub progress_notify: bool,
}

/// One batch of a watch stream. A batch never splits a revision: it holds every matching event
/// of each revision it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    /// Everything up to and including this revision has been delivered.
    pub revision: u64,
    /// Events in revision order; empty for a progress notification.
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// Whether this batch is a progress notification ("you have everything up to
    /// `revision`").
    pub fn is_progress(&self) -> bool {
        self.events.is_empty()
    }
}

/// A lease as granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// The lease id.
    pub id: u64,
    /// Its TTL in seconds.
    pub ttl_secs: u64,
}

/// A lease's remaining time, as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLive {
    /// The lease id.
    pub id: u64,
    /// TTL granted, in seconds.
    pub granted_ttl_secs: u64,
    /// Remaining time in milliseconds.
    pub remaining_ms: u64,
    /// Keys attached to it.
    pub keys: Vec<Vec<u8>>,
}

/// One master of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Member id (raft node id), never 0.
    pub id: u64,
    /// Address masters use to reach it.
    pub peer_addr: String,
    /// Address clients use to reach it.
    pub client_addr: String,
    /// Whether it is a learner (receives the log, does not vote).
    pub learner: bool,
}

/// A member's view of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The answering member.
    pub id: u64,
    /// The leader it knows, 0 for none.
    pub leader: u64,
    /// Its raft term.
    pub term: u64,
    /// Its commit index.
    pub commit_index: u64,
    /// Its applied index.
    pub applied_index: u64,
    /// Its store revision.
    pub revision: u64,
    /// Its compaction revision.
    pub compact_revision: u64,
    /// Index of its last snapshot.
    pub snapshot_index: u64,
    /// The members it knows.
    pub members: Vec<Member>,
}
