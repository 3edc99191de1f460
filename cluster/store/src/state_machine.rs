//! The replicated state machine: what a committed raft entry does.
//!
//! A committed entry carries a [`Proposal`]: a [`Command`] plus, for client writes, a request
//! id. The state machine applies it to the [`Mvcc`] key space, the lease table and the member
//! list, and remembers the last request id and reply of each client so that a retried write
//! is answered from that memory instead of being applied twice.
//!
//! Apply is deterministic: lease deadlines travel inside the commands (set by the leader that
//! proposed them), never read from a local clock here. The whole state, including the raft
//! index it reflects, is what a snapshot holds, so "applied index" and "state" are always
//! written together.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::api::{
    DeleteRequest, DeleteResponse, KeyRange, LeaseGrant, Member, PutRequest, PutResponse,
    RangeRequest, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
use crate::error::StoreError;
use crate::mvcc::Mvcc;

/// How many clients' last replies are remembered for de-duplication.
const MAX_SESSIONS: usize = 20_000;

/// Identifies one client write, for de-duplication of retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// Random id chosen by the client at connect.
    pub client: u64,
    /// Increases by one for each write of that client.
    pub seq: u64,
}

/// A state change, as carried in a raft entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Write one key.
    Put(PutRequest),
    /// Delete keys.
    Delete(DeleteRequest),
    /// A transaction.
    Txn(Txn),
    /// Drop history below a revision.
    Compact(u64),
    /// Create a lease that expires at `deadline_ms` (milliseconds since the Unix epoch).
    LeaseGrant {
        /// Lease id.
        id: u64,
        /// TTL in seconds.
        ttl_secs: u64,
        /// Wall-clock deadline set by the proposing leader.
        deadline_ms: u64,
    },
    /// Extend a lease to a new deadline.
    LeaseKeepAlive {
        /// Lease id.
        id: u64,
        /// New wall-clock deadline.
        deadline_ms: u64,
    },
    /// Delete a lease and every key attached to it.
    LeaseRevoke {
        /// Lease id.
        id: u64,
    },
}

/// A raft entry's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The client request id, for writes that came from a client.
    pub request: Option<RequestId>,
    /// The change.
    pub command: Command,
}

/// What applying a command produced, sent back to the proposing client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Result of a put.
    Put(PutResponse),
    /// Result of a delete.
    Delete(DeleteResponse),
    /// Result of a transaction.
    Txn(TxnResponse),
    /// Compaction done; the revision.
    Compacted(u64),
    /// Lease granted.
    LeaseGranted(LeaseGrant),
    /// Lease extended; its TTL in seconds.
    LeaseKeptAlive(u64),
    /// Lease revoked.
    LeaseRevoked,
    /// The command was refused, deterministically, on every member.
    Refused(Refusal),
}

/// Why a command was refused at apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// A lease named by the command does not exist.
    LeaseNotFound(u64),
    /// The lease id is already used.
    LeaseExists(u64),
    /// The revision is at or below the compaction point.
    Compacted(u64),
    /// The revision is above the current revision.
    FutureRevision {
        /// Asked for.
        revision: u64,
        /// Current.
        current: u64,
    },
    /// The request id is older than the client's last one: a very late retry.
    StaleRequest,
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::LeaseNotFound(id) => StoreError::LeaseNotFound(id),
            Refusal::LeaseExists(id) => StoreError::LeaseExists(id),
            Refusal::Compacted(rev) => StoreError::Compacted {
                compact_revision: rev,
            },
            Refusal::FutureRevision { revision, current } => {
                StoreError::FutureRevision { revision, current }
            }
            Refusal::StaleRequest => {
                StoreError::OutcomeUnknown("a newer write of this client was applied".into())
            }
        }
    }
}

/// One lease in the replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseState {
    /// TTL in seconds.
    pub ttl_secs: u64,
    /// Wall-clock deadline of the last grant or keep-alive, milliseconds since the epoch.
    pub deadline_ms: u64,
    /// Keys attached.
    pub keys: BTreeSet<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    reply: Applied,
    last_index: u64,
}

/// The raft membership the state reflects (a serializable copy of raft's `ConfState`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Voters.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Voters of the outgoing configuration during a joint change.
    pub voters_outgoing: Vec<u64>,
    /// Learners to add when leaving a joint configuration.
    pub learners_next: Vec<u64>,
    /// Whether a joint configuration is left automatically.
    pub auto_leave: bool,
}

impl Membership {
    /// Converts to raft's type.
    pub fn to_conf_state(&self) -> raft::eraftpb::ConfState {
        raft::eraftpb::ConfState {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            voters_outgoing: self.voters_outgoing.clone(),
            learners_next: self.learners_next.clone(),
            auto_leave: self.auto_leave,
            ..Default::default()
        }
    }

    /// Converts from raft's type.
    pub fn from_conf_state(cs: &raft::eraftpb::ConfState) -> Self {
        Membership {
            voters: cs.voters.clone(),
            learners: cs.learners.clone(),
            voters_outgoing: cs.voters_outgoing.clone(),
            learners_next: cs.learners_next.clone(),
            auto_leave: cs.auto_leave,
        }
    }
}

/// The whole replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    /// Raft index of the last applied entry.
    pub applied_index: u64,
    /// Term of that entry.
    pub applied_term: u64,
    /// Raft membership as of `applied_index`.
    pub membership: Membership,
    /// Addresses of the members.
    pub members: BTreeMap<u64, Member>,
    /// The key space.
    pub mvcc: Mvcc,
    /// Leases by id.
    pub leases: BTreeMap<u64, LeaseState>,
    sessions: HashMap<u64, Session>,
}

impl StateMachine {
    /// Applies one proposal committed at `index`.
    pub fn apply(&mut self, index: u64, proposal: Proposal) -> Applied {
        if let Some(req) = proposal.request {
            if let Some(s) = self.sessions.get(&req.client) {
                if req.seq == s.seq {
                    return s.reply.clone();
                }
                if req.seq < s.seq {
                    return Applied::Refused(Refusal::StaleRequest);
                }
            }
        }
        let reply = self.apply_command(proposal.command);
        if let Some(req) = proposal.request {
            self.sessions.insert(
                req.client,
                Session {
                    seq: req.seq,
                    reply: reply.clone(),
                    last_index: index,
                },
            );
            if self.sessions.len() > MAX_SESSIONS {
                self.evict_sessions();
            }
        }
        reply
    }

    /// Forgets the least recently used tenth of the sessions (deterministic: by apply index).
    fn evict_sessions(&mut self) {
        let mut by_age: Vec<(u64, u64)> = self
            .sessions
            .iter()
            .map(|(c, s)| (s.last_index, *c))
            .collect();
        by_age.sort_unstable();
        for (_, client) in by_age.into_iter().take(MAX_SESSIONS / 10) {
            self.sessions.remove(&client);
        }
    }

    fn apply_command(&mut self, command: Command) -> Applied {
        match command {
            Command::Put(req) => {
                if let Err(r) = self.check_lease(req.lease) {
                    return Applied::Refused(r);
                }
                let mut w = self.mvcc.write();
                let old_lease = w_get_lease(&w, &req.key);
                let resp = w.put(&req);
                w.commit();
                self.move_key_lease(&req.key, old_lease, req.lease);
                Applied::Put(resp)
            }
            Command::Delete(req) => {
                let keys = self.keys_in(&req.range);
                let mut w = self.mvcc.write();
                let resp = w.delete(&req);
                w.commit();
                self.detach_keys(keys);
                Applied::Delete(resp)
            }
            Command::Txn(txn) => self.apply_txn(txn),
            Command::Compact(rev) => match self.mvcc.compact(rev) {
                Ok(()) => Applied::Compacted(rev),
                Err(StoreError::Compacted { compact_revision }) => {
                    Applied::Refused(Refusal::Compacted(compact_revision))
                }
                Err(_) => Applied::Refused(Refusal::FutureRevision {
                    revision: rev,
                    current: self.mvcc.revision(),
                }),
            },
            Command::LeaseGrant {
                id,
                ttl_secs,
                deadline_ms,
            } => {
                if self.leases.contains_key(&id) || id == 0 {
                    return Applied::Refused(Refusal::LeaseExists(id));
                }
                self.leases.insert(
                    id,
                    LeaseState {
                        ttl_secs,
                        deadline_ms,
                        keys: BTreeSet::new(),
                    },
                );
                Applied::LeaseGranted(LeaseGrant { id, ttl_secs })
            }
            Command::LeaseKeepAlive { id, deadline_ms } => match self.leases.get_mut(&id) {
                Some(l) => {
                    l.deadline_ms = l.deadline_ms.max(deadline_ms);
                    Applied::LeaseKeptAlive(l.ttl_secs)
                }
                None => Applied::Refused(Refusal::LeaseNotFound(id)),
            },
            Command::LeaseRevoke { id } => {
                let Some(lease) = self.leases.remove(&id) else {
                    return Applied::Refused(Refusal::LeaseNotFound(id));
                };
                let mut w = self.mvcc.write();
                for key in &lease.keys {
                    w.delete(&DeleteRequest {
                        range: KeyRange::key(key.clone()),
                        prev_kv: false,
                    });
                }
                w.commit();
                Applied::LeaseRevoked
            }
        }
    }

    fn apply_txn(&mut self, txn: Txn) -> Applied {
        let succeeded = txn.compares.iter().all(|c| self.mvcc.compare(c));
        let ops = if succeeded { txn.success } else { txn.failure };

        // Check every lease first so that the transaction applies entirely or not at all.
        for op in &ops {
            if let TxnOp::Put(p) = op {
                if let Err(r) = self.check_lease(p.lease) {
                    return Applied::Refused(r);
                }
            }
        }

        let mut lease_moves = Vec::new();
        let mut detached = Vec::new();
        let mut responses = Vec::with_capacity(ops.len());
        let mut w = self.mvcc.write();
        for op in &ops {
            match op {
                TxnOp::Put(p) => {
                    lease_moves.push((p.key.clone(), w_get_lease(&w, &p.key), p.lease));
                    responses.push(TxnOpResponse::Put(w.put(p)));
                }
                TxnOp::Range(r) => responses.push(TxnOpResponse::Range(w.range(r))),
                TxnOp::Delete(d) => {
                    let req = RangeRequest {
                        range: d.range.clone(),
                        ..Default::default()
                    };
                    detached.extend(w.range(&req).kvs.into_iter().map(|kv| (kv.key, kv.lease)));
                    let resp = w.delete(d);
                    responses.push(TxnOpResponse::Delete(resp));
                }
            }
        }
        let revision = w.commit();
        for (key, old, new) in lease_moves {
            self.move_key_lease(&key, old, new);
        }
        self.detach_keys(detached);
        Applied::Txn(TxnResponse {
            succeeded,
            revision,
            responses,
        })
    }

    fn check_lease(&self, lease: u64) -> Result<(), Refusal> {
        if lease != 0 && !self.leases.contains_key(&lease) {
            return Err(Refusal::LeaseNotFound(lease));
        }
        Ok(())
    }

    fn keys_in(&self, range: &KeyRange) -> Vec<(Vec<u8>, u64)> {
        let req = RangeRequest {
            range: range.clone(),
            ..Default::default()
        };
        self.mvcc
            .range(&req)
            .kvs
            .into_iter()
            .map(|kv| (kv.key, kv.lease))
            .collect()
    }

    fn move_key_lease(&mut self, key: &[u8], old: u64, new: u64) {
        if old != 0 && old != new {
            if let Some(l) = self.leases.get_mut(&old) {
                l.keys.remove(key);
            }
        }
        if new != 0 {
            if let Some(l) = self.leases.get_mut(&new) {
                l.keys.insert(key.to_vec());
            }
        }
    }

    fn detach_keys(&mut self, keys: Vec<(Vec<u8>, u64)>) {
        for (key, lease) in keys {
            if lease == 0 || self.mvcc.get(&key).is_some_and(|kv| kv.lease == lease) {
                continue;
            }
            if let Some(l) = self.leases.get_mut(&lease) {
                l.keys.remove(&key);
            }
        }
    }

    /// Encodes the whole state for a snapshot.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("the state machine has only serializable fields")
    }

    /// Decodes a state encoded by [`StateMachine::encode`].
    ///
    /// # Errors
    /// A description of why the bytes are not a valid state.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        bincode::deserialize(bytes).map_err(|e| e.to_string())
    }
}

fn w_get_lease(w: &crate::mvcc::WriteTxn<'_>, key: &[u8]) -> u64 {
    w.get(key).map_or(0, |kv| kv.lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Compare;

    fn put(key: &str, lease: u64) -> Command {
        Command::Put(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            lease,
            prev_kv: false,
        })
    }

    #[test]
    fn test_retried_request_is_applied_once() {
        let mut sm = StateMachine::default();
        let req = Some(RequestId { client: 7, seq: 1 });
        let a = sm.apply(
            1,
            Proposal {
                request: req,
                command: put("k", 0),
            },
        );
        let b = sm.apply(
            2,
            Proposal {
                request: req,
                command: put("k", 0),
            },
        );
        assert_eq!(a, b);
        assert_eq!(sm.mvcc.get(b"k").unwrap().version, 1);
        let stale = sm.apply(
            3,
            Proposal {
                request: Some(RequestId { client: 7, seq: 0 }),
                command: put("k", 0),
            },
        );
        assert_eq!(stale, Applied::Refused(Refusal::StaleRequest));
    }

    #[test]
    fn test_txn_applies_one_branch_atomically() {
        let mut sm = StateMachine::default();
        sm.apply(
            1,
            Proposal {
                request: None,
                command: put("k", 0),
            },
        );
        let txn = Txn {
            compares: vec![Compare::version_equals("k", 1)],
            success: vec![
                TxnOp::Put(PutRequest {
                    key: b"a".to_vec(),
                    ..Default::default()
                }),
                TxnOp::Put(PutRequest {
                    key: b"b".to_vec(),
                    ..Default::default()
                }),
            ],
            failure: vec![],
        };
        let Applied::Txn(r) = sm.apply(
            2,
            Proposal {
                request: None,
                command: Command::Txn(txn.clone()),
            },
        ) else {
            panic!("not a txn reply")
        };
        assert!(r.succeeded);
        assert_eq!(r.revision, 2);
        assert_eq!(sm.mvcc.get(b"b").unwrap().mod_revision, 2);
        let mut bad = txn;
        bad.success.push(TxnOp::Put(PutRequest {
            key: b"c".to_vec(),
            lease: 99,
            ..Default::default()
        }));
        let r = sm.apply(
            3,
            Proposal {
                request: None,
                command: Command::Txn(bad),
            },
        );
        assert_eq!(r, Applied::Refused(Refusal::LeaseNotFound(99)));
        assert!(sm.mvcc.get(b"c").is_none());
        assert_eq!(sm.mvcc.revision(), 2);
    }

    #[test]
    fn test_lease_revoke_deletes_attached_keys() {
        let mut sm = StateMachine::default();
        sm.apply(
            1,
            Proposal {
                request: None,
                command: Command::LeaseGrant {
                    id: 5,
                    ttl_secs: 10,
                    deadline_ms: 0,
                },
            },
        );
        sm.apply(
            2,
            Proposal {
                request: None,
                command: put("a", 5),
            },
        );
        sm.apply(
            3,
            Proposal {
                request: None,
                command: put("b", 5),
            },
        );
        sm.apply(
            4,
            Proposal {
                request: None,
                command: put("b", 0),
            },
        );
        assert_eq!(sm.leases[&5].keys.len(), 1);
        sm.apply(
            5,
            Proposal {
                request: None,
                command: Command::LeaseRevoke { id: 5 },
            },
        );
        assert!(sm.mvcc.get(b"a").is_none());
        assert!(sm.mvcc.get(b"b").is_some());
        assert!(sm.leases.is_empty());
    }

    #[test]
    fn test_encode_decode_round_trip() {
        let mut sm = StateMachine::default();
        sm.apply(
            1,
            Proposal {
                request: Some(RequestId { client: 1, seq: 1 }),
                command: put("a", 0),
            },
        );
        let back = StateMachine::decode(&sm.encode()).unwrap();
        assert_eq!(back, sm);
        assert!(StateMachine::decode(b"\xff\xff").is_err());
    }
}
