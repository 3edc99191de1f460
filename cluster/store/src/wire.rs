//! Framing and messages on the wire, for peers and for clients.
//!
//! Every frame is `[length: u32 LE][crc32 of payload: u32 LE][payload]`. A frame longer than
//! [`MAX_FRAME`] or with a bad checksum is refused with a typed error and the connection is
//! closed: nothing read from a socket is trusted before it is checked.
//!
//! A peer connection opens with a [`PeerHello`] that names the cluster and both ends; a master
//! refuses a hello from another cluster. After the hello, each frame carries one raft message
//! in protobuf. A client connection carries bincode-encoded [`ClientRequest`]s and
//! [`ClientResponse`]s.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::api::{
    DeleteRequest, LeaseTimeToLive, Member, PutRequest, RangeRequest, RangeResponse, Status, Txn,
    WatchRequest, WatchResponse,
};
use crate::error::{Result, StoreError};
use crate::state_machine::{Applied, RequestId};

/// Largest frame accepted (snapshots travel in one frame).
pub const MAX_FRAME: usize = 512 << 20;

/// Largest client request a master accepts, and a client sends: a put's key and value, a
/// transaction's operations. (etcd's default is 1.5 MiB; a control plane's objects are far
/// smaller than this.)
pub const MAX_REQUEST: usize = 64 << 20;

/// Bytes reserved up front for a frame; a longer one grows as its bytes arrive.
const READ_CHUNK: usize = 1 << 20;

/// Magic that opens a peer hello.
pub const PEER_MAGIC: u64 = 0x706f_6476_7261_6674; // "podvraft"

/// Writes one frame (not flushed).
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    w.write_all(&header)?;
    w.write_all(payload)
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a header.
///
/// # Errors
/// [`StoreError::Io`] when the socket fails, [`StoreError::MalformedMessage`] when the frame is
/// too long or its checksum does not match.
pub fn read_frame(r: &mut impl Read, from: &str) -> Result<Option<Vec<u8>>> {
    read_frame_limited(r, from, MAX_FRAME)
}

/// Reads one frame of at most `limit` bytes; as [`read_frame`] otherwise.
///
/// # Errors
/// As [`read_frame`], with `limit` for the length.
pub fn read_frame_limited(r: &mut impl Read, from: &str, limit: usize) -> Result<Option<Vec<u8>>> {
    let mut header = [0u8; 8];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(StoreError::io(format!("reading a frame from {from}"), e)),
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len > limit {
        return Err(StoreError::MalformedMessage {
            from: from.to_string(),
            reason: format!("frame of {len} bytes exceeds the {limit}-byte limit"),
        });
    }
    // Memory grows with the bytes that arrive, not with the length a peer claims: a header
    // alone cannot make the master allocate the frame limit.
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
    let got = r
        .take(len as u64)
        .read_to_end(&mut payload)
        .map_err(|e| StoreError::io(format!("reading a {len}-byte frame from {from}"), e))?;
    if got != len {
        return Err(StoreError::io(
            format!("reading a {len}-byte frame from {from}"),
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the stream ended after {got} bytes"),
            ),
        ));
    }
    if crc32fast::hash(&payload) != crc {
        return Err(StoreError::MalformedMessage {
            from: from.to_string(),
            reason: "frame checksum mismatch".into(),
        });
    }
    Ok(Some(payload))
}

/// Encodes a value with bincode.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).expect("wire types serialize without failure")
}

/// Decodes a bincode value, refusing trailing bytes and oversized lengths.
///
/// # Errors
/// [`StoreError::MalformedMessage`] naming `from`.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], from: &str) -> Result<T> {
    use bincode::Options;
    bincode::options()
        .with_fixint_encoding()
        .with_limit(MAX_FRAME as u64)
        .deserialize(bytes)
        .map_err(|e| StoreError::MalformedMessage {
            from: from.to_string(),
            reason: e.to_string(),
        })
}

/// First frame of a peer connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHello {
    /// Always [`PEER_MAGIC`].
    pub magic: u64,
    /// The sender's cluster id.
    pub cluster_id: u64,
    /// The sender's member id.
    pub from: u64,
    /// The member id the sender wants to reach.
    pub to: u64,
}

/// The answer to a [`PeerHello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerHelloReply {
    /// Accepted: raft messages may follow.
    Accepted,
    /// Refused, with the reason.
    Refused(String),
}

/// A client request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The cluster id the client expects, 0 for any.
    pub cluster_id: u64,
    /// Request id, for writes.
    pub id: Option<RequestId>,
    /// The operation.
    pub op: Op,
}

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Put.
    Put(PutRequest),
    /// Range read.
    Range(RangeRequest),
    /// Delete.
    Delete(DeleteRequest),
    /// Transaction.
    Txn(Txn),
    /// Compaction.
    Compact(u64),
    /// Grant a lease; id 0 lets the leader choose.
    LeaseGrant {
        /// Requested id, 0 for any.
        id: u64,
        /// TTL in seconds.
        ttl_secs: u64,
    },
    /// Keep a lease alive.
    LeaseKeepAlive(u64),
    /// Revoke a lease.
    LeaseRevoke(u64),
    /// Ask a lease's remaining time (leader only).
    LeaseTimeToLive(u64),
    /// Turn this connection into a watch stream.
    Watch(WatchRequest),
    /// Add a learner.
    MemberAddLearner(Member),
    /// Promote a learner to voter.
    MemberPromote(u64),
    /// Remove a member.
    MemberRemove(u64),
    /// The member's status.
    Status,
    /// Test hook: drop all peer traffic to and from these members (empty heals). Refused
    /// unless the master was started with fault injection on.
    Partition(Vec<u64>),
    /// Test hook: ask the leader to transfer leadership to a member.
    TransferLeader(u64),
}

/// The successful answer to an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The result of a write.
    Applied(Applied),
    /// The result of a read.
    Range(RangeResponse),
    /// A lease's remaining time.
    TimeToLive(LeaseTimeToLive),
    /// One batch of a watch stream.
    Watch(WatchResponse),
    /// Status.
    Status(Status),
    /// Done.
    Done,
}

/// A typed error sent to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorReply {
    /// Not the leader; the leader's client address if known.
    NotLeader(Option<String>),
    /// Revision compacted.
    Compacted(u64),
    /// Revision in the future.
    FutureRevision(u64, u64),
    /// No such lease.
    LeaseNotFound(u64),
    /// Lease id taken.
    LeaseExists(u64),
    /// Timed out; for writes, outcome unknown.
    Timeout(String),
    /// Invalid request.
    Invalid(String),
    /// Wrong cluster.
    WrongCluster(u64, u64),
    /// Any other failure.
    Other(String),
}

/// A client response.
pub type ClientResponse = std::result::Result<Reply, ErrorReply>;

impl From<StoreError> for ErrorReply {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotLeader { leader } => ErrorReply::NotLeader(leader),
            StoreError::Compacted { compact_revision } => ErrorReply::Compacted(compact_revision),
            StoreError::FutureRevision { revision, current } => {
                ErrorReply::FutureRevision(revision, current)
            }
            StoreError::LeaseNotFound(id) => ErrorReply::LeaseNotFound(id),
            StoreError::LeaseExists(id) => ErrorReply::LeaseExists(id),
            StoreError::Timeout(what) | StoreError::OutcomeUnknown(what) => {
                ErrorReply::Timeout(what)
            }
            StoreError::InvalidRequest(what) => ErrorReply::Invalid(what),
            StoreError::WrongCluster { expected, got } => ErrorReply::WrongCluster(expected, got),
            other => ErrorReply::Other(other.to_string()),
        }
    }
}

impl From<ErrorReply> for StoreError {
    fn from(e: ErrorReply) -> Self {
        match e {
            ErrorReply::NotLeader(leader) => StoreError::NotLeader { leader },
            ErrorReply::Compacted(rev) => StoreError::Compacted {
                compact_revision: rev,
            },
            ErrorReply::FutureRevision(revision, current) => {
                StoreError::FutureRevision { revision, current }
            }
            ErrorReply::LeaseNotFound(id) => StoreError::LeaseNotFound(id),
            ErrorReply::LeaseExists(id) => StoreError::LeaseExists(id),
            ErrorReply::Timeout(what) => StoreError::Timeout(what),
            ErrorReply::Invalid(what) => StoreError::InvalidRequest(what),
            ErrorReply::WrongCluster(expected, got) => StoreError::WrongCluster { expected, got },
            ErrorReply::Other(what) => StoreError::Unavailable(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frame_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        let got = read_frame(&mut buf.as_slice(), "test").unwrap();
        assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn test_read_frame_fails_when_checksum_mismatches() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        buf[9] ^= 1;
        assert!(matches!(
            read_frame(&mut buf.as_slice(), "test"),
            Err(StoreError::MalformedMessage { .. })
        ));
    }

    #[test]
    fn test_read_frame_fails_when_length_is_absurd() {
        let buf = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut buf.as_slice(), "test"),
            Err(StoreError::MalformedMessage { .. })
        ));
    }

    #[test]
    fn test_byte_fields_keep_the_sequence_encoding() {
        // Keys and values are encoded as bytes, not element by element; bincode writes both as
        // a length and the bytes, so frames, log entries and snapshots of older masters decode.
        #[derive(Serialize, Deserialize)]
        struct SeqPut {
            key: Vec<u8>,
            value: Vec<u8>,
            lease: u64,
            prev_kv: bool,
        }
        let put = PutRequest {
            key: b"k1".to_vec(),
            value: (0..=255).collect(),
            lease: 7,
            prev_kv: true,
        };
        let seq = SeqPut {
            key: put.key.clone(),
            value: put.value.clone(),
            lease: 7,
            prev_kv: true,
        };
        assert_eq!(encode(&put), encode(&seq));
        let back: PutRequest = decode(&encode(&seq), "test").unwrap();
        assert_eq!(back, put);
    }

    #[test]
    fn test_decode_fails_on_garbage() {
        let r: Result<ClientRequest> = decode(&[0xff; 16], "test");
        assert!(matches!(r, Err(StoreError::MalformedMessage { .. })));
    }
}
