//! The raft node of one master: raft-rs's `RawNode` driven by one ready loop thread.
//!
//! The loop owns the `RawNode`, the log and the state machine's write side. It follows the
//! contract of raft-rs's `Ready`:
//! 1. messages a leader may send before persisting go out first;
//! 2. a snapshot from the leader is made durable (file, then the log reset) and installed;
//! 3. new entries and the hard state, including the commit index, are written and fsynced in
//!    one raft-engine write; only then are the persisted messages (votes, append acks) sent
//!    and committed entries applied;
//! 4. after `advance`, a new commit index is written to the log before the entries it covers
//!    are applied, then `advance_apply` tells raft the applied index. That write is not
//!    fsynced on its own (committed entries are already durable on a quorum, as in etcd): the
//!    applied state is in memory and becomes durable only in a snapshot, and a snapshot fsyncs
//!    the log first, so the durable commit index is never behind the durable applied index.
//!
//! Everything that arrives while an fsync runs queues on the loop's bounded channel and goes
//! into the next write, which is the group commit that makes throughput grow with load; when
//! the channel is full, clients and peers wait (and clients time out) rather than grow memory.
//!
//! Leases are timed on the leader only: the deadline of each grant or keep-alive travels in the
//! command as wall-clock milliseconds, so a new leader restores the remaining time of every
//! lease from the replicated state and then expires them through raft proposals. A deposed
//! leader stops timing leases at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, Entry, EntryType, Snapshot};
use raft::prelude::ConfChange;
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, RawNode, SnapshotStatus, StateRole, Storage};
use raft_proto::ConfChangeI;

use crate::api::{LeaseTimeToLive, Member, Status};
use crate::error::{Result, StoreError};
use crate::log_store::{LogStore, SnapshotDir, raft_snapshot};
use crate::reply::{self, Closed, Responder};
use crate::state_machine::{Applied, Command, Proposal, StateMachine};
use crate::transport::{Inbound, Transport, lock};

/// Messages the ready loop serves.
pub enum NodeMsg {
    /// Propose a write; the reply comes when it is applied.
    Propose(Proposal, Responder<Result<Applied>>),
    /// Ask for a read index; the reply comes once this member has applied up to it.
    ReadIndex(Responder<Result<u64>>),
    /// Propose a membership change.
    ConfChange(ConfChangeV2, Responder<Result<()>>),
    /// A lease's remaining time (leader only).
    TimeToLive(u64, Responder<Result<LeaseTimeToLive>>),
    /// Transfer leadership.
    TransferLeader(u64),
    /// From the transport.
    Net(Inbound),
    /// Stop the loop.
    Stop,
}

/// Requests and peer messages queued for the ready loop before senders wait.
const INBOX: usize = 65_536;

/// Raft timing and snapshot policy of a node.
#[derive(Clone, Debug)]
pub struct NodeTiming {
    /// One raft tick.
    pub tick: Duration,
    /// Ticks without a leader before an election (randomized up to twice this).
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between two snapshots.
    pub snapshot_entries: u64,
    /// Entries kept in the log behind a snapshot, for slightly slow followers.
    pub snapshot_trail: u64,
}

/// State shared between the ready loop and the threads that serve clients.
pub struct Shared {
    /// This member's id.
    pub id: u64,
    /// The cluster id.
    pub cluster_id: u64,
    /// The state machine (written by the loop only).
    pub sm: RwLock<StateMachine>,
    /// The loop's latest view of raft.
    pub status: Mutex<Status>,
    /// Bumped after each applied batch; watchers wait on it.
    pub applied: (Mutex<u64>, Condvar),
    /// The loop's inbox.
    pub tx: Sender<NodeMsg>,
    /// Set when the loop stopped (for good or because of an error).
    pub stopped: AtomicBool,
    /// The error the loop stopped on, if any.
    pub failure: Mutex<Option<String>>,
    /// The transport.
    pub transport: Arc<Transport>,
}

impl Shared {
    /// Client address of the leader this member knows.
    pub fn leader_addr(&self) -> Option<String> {
        let leader = lock(&self.status).leader;
        if leader == 0 {
            return None;
        }
        let sm = self.sm.read().unwrap_or_else(|p| p.into_inner());
        sm.members.get(&leader).map(|m| m.client_addr.clone())
    }

    /// Waits until the applied index changes from `seen` or `timeout` passes; returns the
    /// applied index.
    pub fn wait_applied(&self, seen: u64, timeout: Duration) -> u64 {
        let (m, cv) = &self.applied;
        let g = lock(m);
        if *g != seen {
            return *g;
        }
        let (g, _) = cv
            .wait_timeout(g, timeout)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }
}

/// raft-rs storage: entries in memory (mirroring the durable log), snapshots made on demand
/// from the applied state machine.
#[derive(Clone)]
struct RaftStorage {
    mem: MemStorage,
    shared: Arc<RwLock<Option<Arc<Shared>>>>,
}

impl Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let unavailable = raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable);
        let guard = self.shared.read().unwrap_or_else(|p| p.into_inner());
        let Some(shared) = guard.as_ref() else {
            return Err(unavailable);
        };
        let sm = shared.sm.read().unwrap_or_else(|p| p.into_inner());
        if sm.applied_index < request_index {
            return Err(unavailable);
        }
        Ok(raft_snapshot(&sm))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a node needs to start.
pub struct NodeStart {
    /// Member id.
    pub id: u64,
    /// Cluster id.
    pub cluster_id: u64,
    /// Data directory.
    pub data_dir: std::path::PathBuf,
    /// Initial members (used to bootstrap an empty data directory).
    pub members: Vec<Member>,
    /// Start empty and wait for the leader's snapshot instead of bootstrapping.
    pub join: bool,
    /// Peer listen address.
    pub peer_listen: String,
    /// Timing.
    pub timing: NodeTiming,
}

struct Node {
    raw: RawNode<RaftStorage>,
    mem: MemStorage,
    log: LogStore,
    snaps: SnapshotDir,
    shared: Arc<Shared>,
    rx: Receiver<NodeMsg>,
    timing: NodeTiming,
    pending: HashMap<u64, Responder<Result<Applied>>>,
    pending_conf: HashMap<u64, Responder<Result<()>>>,
    reads: HashMap<Vec<u8>, (Responder<Result<u64>>, Instant)>,
    read_waiters: Vec<(u64, Responder<Result<u64>>)>,
    next_tag: u64,
    leader: bool,
    lessor: HashMap<u64, Instant>,
    revoking: HashMap<u64, Instant>,
    last_snapshot: u64,
}

/// Opens the durable state, starts the transport and the ready loop.
///
/// # Errors
/// Any failure to open or check the data directory, or to bind the peer address.
pub fn start(cfg: NodeStart) -> Result<(Arc<Shared>, std::thread::JoinHandle<()>)> {
    let snaps = SnapshotDir::open(&cfg.data_dir.join("snap"))?;
    let log = LogStore::open(&cfg.data_dir.join("log"))?;
    let mut sm = snaps.load_latest()?;
    let mut hs = log.hard_state()?;
    if sm.is_none() && hs.term == 0 && !cfg.join {
        let mut boot = StateMachine::default();
        boot.applied_index = 1;
        boot.applied_term = 1;
        boot.membership.voters = cfg
            .members
            .iter()
            .filter(|m| !m.learner)
            .map(|m| m.id)
            .collect();
        boot.membership.learners = cfg
            .members
            .iter()
            .filter(|m| m.learner)
            .map(|m| m.id)
            .collect();
        boot.members = cfg.members.iter().map(|m| (m.id, m.clone())).collect();
        snaps.save(&boot.encode(), 1)?;
        hs.term = 1;
        hs.commit = 1;
        log.append(&[], Some(&hs), true)?;
        sm = Some(boot);
    }
    if let Some(sm) = sm.as_ref().filter(|_| hs.term == 0) {
        // Every master writes its hard state before its first snapshot: a snapshot without
        // one means the log (with this member's votes and acknowledged entries) was lost.
        return Err(StoreError::Corrupt {
            path: cfg.data_dir.join("log"),
            reason: format!(
                "the raft log holds no hard state, but a snapshot at index {} exists: the log \
                 was lost; restore it, or remove this member and add it back empty",
                sm.applied_index
            ),
        });
    }
    let sm = sm.unwrap_or_default();

    let mem = MemStorage::new();
    if sm.applied_index > 0 {
        let mut snap = raft_snapshot(&sm);
        snap.data = Default::default();
        mem.wl().apply_snapshot(snap)?;
    }
    if hs.commit < sm.applied_index {
        // A leader's snapshot was saved but the crash came before the log was reset: the log
        // is older than the snapshot and is dropped, as the reset would have done.
        hs.commit = sm.applied_index;
        hs.term = hs.term.max(sm.applied_term);
        log.reset_to_snapshot(&hs)?;
    } else {
        let entries = log.entries_from(sm.applied_index + 1)?;
        mem.wl().append(&entries)?;
    }
    mem.wl().set_hardstate(hs);

    let holder: Arc<RwLock<Option<Arc<Shared>>>> = Arc::new(RwLock::new(None));
    let storage = RaftStorage {
        mem: mem.clone(),
        shared: Arc::clone(&holder),
    };
    let raft_cfg = raft::Config {
        id: cfg.id,
        election_tick: cfg.timing.election_ticks,
        heartbeat_tick: cfg.timing.heartbeat_ticks,
        applied: sm.applied_index,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        read_only_option: raft::ReadOnlyOption::Safe,
        ..Default::default()
    };
    raft_cfg.validate()?;
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&raft_cfg, storage, &logger)?;

    let (tx, rx) = crossbeam_channel::bounded(INBOX);
    let sink_tx = tx.clone();
    let transport = Transport::start(
        cfg.id,
        cfg.cluster_id,
        &cfg.peer_listen,
        Arc::new(move |m| {
            // A peer's message waits for room, which slows that peer's connection down (TCP
            // pushes back); a delivery report may come from the loop's own thread, so it never
            // waits, and is dropped if the inbox is full (raft only takes it as a hint).
            let _ = match m {
                Inbound::Message(_) => sink_tx.send(NodeMsg::Net(m)).map_err(|_| ()),
                _ => sink_tx.try_send(NodeMsg::Net(m)).map_err(|_| ()),
            };
        }),
    )?;
    for m in cfg.members.iter().chain(sm.members.values()) {
        transport.set_peer(m.id, &m.peer_addr);
    }
    let last_snapshot = sm.applied_index;
    let applied = sm.applied_index;
    let shared = Arc::new(Shared {
        id: cfg.id,
        cluster_id: cfg.cluster_id,
        sm: RwLock::new(sm),
        status: Mutex::new(Status {
            id: cfg.id,
            applied_index: applied,
            ..Default::default()
        }),
        applied: (Mutex::new(applied), Condvar::new()),
        tx,
        stopped: AtomicBool::new(false),
        failure: Mutex::new(None),
        transport,
    });
    *holder.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&shared));

    let mut node = Node {
        raw,
        mem,
        log,
        snaps,
        shared: Arc::clone(&shared),
        rx,
        timing: cfg.timing,
        pending: HashMap::new(),
        pending_conf: HashMap::new(),
        reads: HashMap::new(),
        read_waiters: Vec::new(),
        next_tag: rand::random::<u64>() >> 1,
        leader: false,
        lessor: HashMap::new(),
        revoking: HashMap::new(),
        last_snapshot,
    };
    let id = cfg.id;
    let handle = std::thread::Builder::new()
        .name(format!("raft-{id}"))
        .spawn(move || {
            // A panic in the loop (raft-rs gives up by panicking) must stop this master for
            // good and be reported, never leave clients waiting on a loop that is gone.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.run()))
                .unwrap_or_else(|panic| Err(StoreError::Fatal(panic_message(&*panic))));
            node.shared.stopped.store(true, Ordering::SeqCst);
            node.fail_all();
            node.shared.transport.stop();
            if let Err(e) = result {
                tracing::error!(member = id, error = %e, "raft loop stopped on an error");
                *lock(&node.shared.failure) = Some(e.to_string());
            }
            // Wake watchers so they notice the stop.
            node.shared.applied.1.notify_all();
        })
        .map_err(|e| StoreError::io("spawning the raft loop", e))?;
    Ok((shared, handle))
}

impl Node {
    fn run(&mut self) -> Result<()> {
        let mut next_tick = Instant::now() + self.timing.tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(NodeMsg::Stop) => return Ok(()),
                Ok(m) => self.handle(m)?,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            for _ in 0..4096 {
                match self.rx.try_recv() {
                    Ok(NodeMsg::Stop) => return Ok(()),
                    Ok(m) => self.handle(m)?,
                    Err(_) => break,
                }
            }
            if Instant::now() >= next_tick {
                next_tick += self.timing.tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + self.timing.tick;
                }
                self.raw.tick();
                self.tick_leases();
                self.sweep_reads();
            }
            self.on_ready()?;
        }
    }

    fn handle(&mut self, m: NodeMsg) -> Result<()> {
        match m {
            NodeMsg::Propose(p, reply) => self.propose(p, reply),
            NodeMsg::ReadIndex(reply) => {
                let ctx = self.tag().to_le_bytes().to_vec();
                self.raw.read_index(ctx.clone());
                self.reads.insert(ctx, (reply, Instant::now()));
            }
            NodeMsg::ConfChange(cc, reply) => {
                if !self.leader {
                    reply.send(Err(StoreError::NotLeader {
                        leader: self.shared.leader_addr(),
                    }));
                    return Ok(());
                }
                let tag = self.tag();
                match self.raw.propose_conf_change(self.context(tag), cc) {
                    Ok(()) => {
                        self.pending_conf.insert(tag, reply);
                    }
                    Err(e) => {
                        reply.send(Err(StoreError::InvalidRequest(format!(
                            "membership change refused: {e}"
                        ))));
                    }
                }
            }
            NodeMsg::TimeToLive(id, reply) => {
                reply.send(self.time_to_live(id));
            }
            NodeMsg::TransferLeader(to) => self.raw.transfer_leader(to),
            NodeMsg::Net(Inbound::Message(msg)) => self.step(*msg)?,
            NodeMsg::Net(Inbound::Unreachable(to)) => self.raw.report_unreachable(to),
            NodeMsg::Net(Inbound::SnapshotSent(to, ok)) => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
            NodeMsg::Stop => {}
        }
        Ok(())
    }

    /// Steps a peer's message into raft, after the checks that keep raft-rs from giving up.
    ///
    /// raft-rs treats some impossible messages (a commit index past the end of this log, an
    /// append that rewrites committed entries) as fatal and panics. A peer that sends one is
    /// broken or hostile: its message is refused with an error and this master goes on. Should
    /// raft-rs still panic, the loop stops with [`StoreError::Fatal`], since the node's state
    /// can no longer be trusted.
    fn step(&mut self, msg: raft::eraftpb::Message) -> Result<()> {
        if let Err(reason) = self.check_peer_message(&msg) {
            tracing::error!(member = self.shared.id, from = msg.from, kind = ?msg.get_msg_type(), %reason, "refused a raft message");
            return Ok(());
        }
        let (from, kind) = (msg.from, msg.get_msg_type());
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.raw.step(msg))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(member = self.shared.id, error = %e, "raft refused a message");
                Ok(())
            }
            Err(panic) => Err(StoreError::Fatal(format!(
                "raft gave up on a {kind:?} from member {from}: {}",
                panic_message(&*panic)
            ))),
        }
    }

    /// The conditions under which raft-rs would panic on a message, checked against this log.
    fn check_peer_message(&self, msg: &raft::eraftpb::Message) -> std::result::Result<(), String> {
        use raft::eraftpb::MessageType;
        let log = &self.raw.raft.raft_log;
        // Messages of an older term are ignored by raft; only current ones can do harm.
        if msg.term < self.raw.raft.term && msg.term != 0 {
            return Ok(());
        }
        match msg.get_msg_type() {
            MessageType::MsgHeartbeat if msg.commit > log.last_index() => {
                // A leader sends min(match, commit), never past what this member holds.
                Err(format!(
                    "heartbeat commits index {} but this log ends at {}",
                    msg.commit,
                    log.last_index()
                ))
            }
            MessageType::MsgAppendResponse if !msg.reject && msg.index > log.last_index() => {
                Err(format!(
                    "append response acknowledges index {} but this log ends at {}",
                    msg.index,
                    log.last_index()
                ))
            }
            MessageType::MsgAppend => {
                let mut prev = msg.index;
                for e in msg.get_entries() {
                    if prev.checked_add(1) != Some(e.index) {
                        return Err(format!(
                            "append carries entry {} after entry {prev}",
                            e.index
                        ));
                    }
                    prev = e.index;
                    if e.index <= log.committed
                        && log.term(e.index).is_ok_and(|t| t != 0 && t != e.term)
                    {
                        return Err(format!(
                            "append rewrites committed entry {} (term {} here, {} sent)",
                            e.index,
                            log.term(e.index).unwrap_or(0),
                            e.term
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn tag(&mut self) -> u64 {
        self.next_tag = self.next_tag.wrapping_add(1);
        self.next_tag
    }

    fn context(&self, tag: u64) -> Vec<u8> {
        let mut ctx = self.shared.id.to_le_bytes().to_vec();
        ctx.extend_from_slice(&tag.to_le_bytes());
        ctx
    }

    fn propose(&mut self, p: Proposal, reply: Responder<Result<Applied>>) {
        if !self.leader {
            reply.send(Err(StoreError::NotLeader {
                leader: self.shared.leader_addr(),
            }));
            return;
        }
        let tag = self.tag();
        let data = bincode::serialize(&p).expect("proposals always encode");
        match self.raw.propose(self.context(tag), data) {
            Ok(()) => {
                self.pending.insert(tag, reply);
            }
            Err(_) => {
                reply.send(Err(StoreError::NotLeader {
                    leader: self.shared.leader_addr(),
                }));
            }
        }
    }

    fn propose_internal(&mut self, command: Command) {
        let data = bincode::serialize(&Proposal {
            request: None,
            command,
        })
        .expect("proposals always encode");
        let _ = self.raw.propose(Vec::new(), data);
    }

    fn time_to_live(&self, id: u64) -> Result<LeaseTimeToLive> {
        if !self.leader {
            return Err(StoreError::NotLeader {
                leader: self.shared.leader_addr(),
            });
        }
        let sm = self.shared.sm.read().unwrap_or_else(|p| p.into_inner());
        let lease = sm.leases.get(&id).ok_or(StoreError::LeaseNotFound(id))?;
        let remaining = self.lessor.get(&id).map_or(0, |at| {
            at.saturating_duration_since(Instant::now()).as_millis() as u64
        });
        Ok(LeaseTimeToLive {
            id,
            granted_ttl_secs: lease.ttl_secs,
            remaining_ms: remaining,
            keys: lease.keys.iter().cloned().collect(),
        })
    }

    /// Expiry instant of a lease from its replicated deadline, clamped to its TTL.
    fn expiry_of(ttl_secs: u64, deadline_ms: u64) -> Instant {
        let remaining = deadline_ms
            .saturating_sub(now_ms())
            .min(ttl_secs.saturating_mul(1000));
        Instant::now() + Duration::from_millis(remaining)
    }

    fn tick_leases(&mut self) {
        if !self.leader {
            return;
        }
        let now = Instant::now();
        let expired: Vec<u64> = self
            .lessor
            .iter()
            .filter(|(id, at)| **at <= now && self.revoking.get(id).is_none_or(|t| now >= *t))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.revoking.insert(id, now + Duration::from_secs(1));
            self.propose_internal(Command::LeaseRevoke { id });
        }
    }

    fn sweep_reads(&mut self) {
        let old = Instant::now() - Duration::from_secs(10);
        self.reads.retain(|_, (_, at)| *at > old);
    }

    fn become_leader(&mut self) {
        self.leader = true;
        let sm = self.shared.sm.read().unwrap_or_else(|p| p.into_inner());
        self.lessor = sm
            .leases
            .iter()
            .map(|(id, l)| (*id, Self::expiry_of(l.ttl_secs, l.deadline_ms)))
            .collect();
        self.revoking.clear();
    }

    fn lose_leadership(&mut self) {
        self.leader = false;
        self.lessor.clear();
        self.revoking.clear();
        for (_, reply) in self.pending.drain() {
            reply.send(Err(StoreError::OutcomeUnknown("leadership changed".into())));
        }
        for (_, reply) in self.pending_conf.drain() {
            reply.send(Err(StoreError::OutcomeUnknown("leadership changed".into())));
        }
    }

    fn fail_all(&mut self) {
        for (_, reply) in self.pending.drain() {
            reply.send(Err(StoreError::Stopped));
        }
        for (_, reply) in self.pending_conf.drain() {
            reply.send(Err(StoreError::Stopped));
        }
        for (_, (reply, _)) in self.reads.drain() {
            reply.send(Err(StoreError::Stopped));
        }
        for (_, reply) in self.read_waiters.drain(..) {
            reply.send(Err(StoreError::Stopped));
        }
    }

    fn on_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        if let Some(ss) = ready.ss() {
            let is_leader = ss.raft_state == StateRole::Leader;
            if is_leader && !self.leader {
                self.become_leader();
            } else if !is_leader && self.leader {
                self.lose_leadership();
            }
            lock(&self.shared.status).leader = ss.leader_id;
        }
        if !ready.messages().is_empty() {
            self.shared.transport.send(ready.take_messages());
        }
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone())?;
        }
        for rs in ready.take_read_states() {
            if let Some((reply, _)) = self.reads.remove(&rs.request_ctx) {
                self.read_waiters.push((rs.index, reply));
            }
        }

        // Entries and hard state (with the commit index) are written together, and fsynced
        // whenever raft needs it (new entries, a new term or vote), before any vote or append
        // acknowledgement leaves and before anything they commit is applied. A write that only
        // moves the commit index is not fsynced on its own, as in etcd: committed entries are
        // already durable on a quorum, and the applied state becomes durable only through a
        // snapshot, which syncs the log first, so the durable commit index never trails the
        // durable applied index.
        let hs = ready.hs().cloned();
        self.log
            .append(ready.entries(), hs.as_ref(), ready.must_sync())?;
        self.mem.wl().append(ready.entries())?;
        if let Some(hs) = hs {
            self.mem.wl().set_hardstate(hs);
        }
        self.shared.transport.send(ready.take_persisted_messages());
        let committed = ready.take_committed_entries();
        self.apply(committed)?;

        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.raw.raft.hard_state();
            hs.commit = commit;
            self.log.append(&[], Some(&hs), false)?;
            self.mem.wl().set_hardstate(hs);
        }
        self.shared.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.after_apply()
    }

    fn install_snapshot(&mut self, snap: Snapshot) -> Result<()> {
        let index = snap.get_metadata().index;
        let sm =
            StateMachine::decode(&snap.data).map_err(|reason| StoreError::MalformedMessage {
                from: "the leader's snapshot".into(),
                reason,
            })?;
        if sm.applied_index != index {
            return Err(StoreError::MalformedMessage {
                from: "the leader's snapshot".into(),
                reason: format!("metadata index {index} but state at {}", sm.applied_index),
            });
        }
        // Term and vote reach the log before the snapshot file does, so a snapshot never sits
        // beside a log without a hard state, which `start` takes for a lost log. (Its commit
        // index stays until the reset below: the entries it would cover are not there yet.)
        let current = self.raw.raft.hard_state();
        let mut durable = self.log.hard_state()?;
        if (durable.term, durable.vote) != (current.term, current.vote) {
            durable.term = current.term;
            durable.vote = current.vote;
            self.log.append(&[], Some(&durable), true)?;
        }
        self.snaps.save(&snap.data, index)?;
        let mut hs = self.raw.raft.hard_state();
        hs.commit = hs.commit.max(index);
        self.log.reset_to_snapshot(&hs)?;
        self.mem.wl().apply_snapshot(snap)?;
        for m in sm.members.values() {
            self.shared.transport.set_peer(m.id, &m.peer_addr);
        }
        tracing::info!(
            member = self.shared.id,
            index,
            "installed the leader's snapshot"
        );
        *self.shared.sm.write().unwrap_or_else(|p| p.into_inner()) = sm;
        self.last_snapshot = index;
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut replies = Vec::new();
        let shared = Arc::clone(&self.shared);
        let mut sm = shared.sm.write().unwrap_or_else(|p| p.into_inner());
        for e in entries {
            if e.index <= sm.applied_index {
                continue;
            }
            let tag = self.own_tag(&e.context);
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {}
                EntryType::EntryNormal => {
                    let proposal: Proposal =
                        bincode::deserialize(&e.data).map_err(|err| StoreError::Corrupt {
                            path: "raft log".into(),
                            reason: format!("entry {} does not decode: {err}", e.index),
                        })?;
                    if self.leader {
                        match &proposal.command {
                            Command::LeaseGrant {
                                id,
                                ttl_secs,
                                deadline_ms,
                            } => {
                                self.lessor
                                    .insert(*id, Self::expiry_of(*ttl_secs, *deadline_ms));
                            }
                            Command::LeaseKeepAlive { id, deadline_ms } => {
                                if let Some(l) = sm.leases.get(id) {
                                    self.lessor
                                        .insert(*id, Self::expiry_of(l.ttl_secs, *deadline_ms));
                                }
                            }
                            Command::LeaseRevoke { id } => {
                                self.lessor.remove(id);
                                self.revoking.remove(id);
                            }
                            _ => {}
                        }
                    }
                    let applied = sm.apply(e.index, proposal);
                    if let Some(tag) = tag {
                        if let Some(reply) = self.pending.remove(&tag) {
                            replies.push((reply, applied));
                        }
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cc = if e.get_entry_type() == EntryType::EntryConfChange {
                        ConfChange::parse_from_bytes(&e.data).map(|c| c.into_v2())
                    } else {
                        ConfChangeV2::parse_from_bytes(&e.data)
                    }
                    .map_err(|err| StoreError::Corrupt {
                        path: "raft log".into(),
                        reason: format!("conf change {} does not decode: {err}", e.index),
                    })?;
                    let result = self.apply_conf_change(&mut sm, &cc);
                    if let Some(reply) = tag.and_then(|t| self.pending_conf.remove(&t)) {
                        reply.send(result);
                    }
                }
            }
            sm.applied_index = e.index;
            sm.applied_term = e.term;
        }
        let applied = sm.applied_index;
        drop(sm);
        for (reply, a) in replies {
            reply.send(Ok(a));
        }
        lock(&self.shared.status).applied_index = applied;
        Ok(())
    }

    fn apply_conf_change(&mut self, sm: &mut StateMachine, cc: &ConfChangeV2) -> Result<()> {
        let cs = self.raw.apply_conf_change(cc)?;
        sm.membership = crate::state_machine::Membership::from_conf_state(&cs);
        if !cc.context.is_empty() {
            if let Ok(member) = bincode::deserialize::<Member>(&cc.context) {
                self.shared.transport.set_peer(member.id, &member.peer_addr);
                sm.members.insert(member.id, member);
            }
        }
        let known: Vec<u64> = cs
            .voters
            .iter()
            .chain(cs.learners.iter())
            .copied()
            .collect();
        for ch in &cc.changes {
            let id = ch.node_id;
            if !known.contains(&id) {
                sm.members.remove(&id);
                self.shared.transport.remove_peer(id);
            } else if let Some(m) = sm.members.get_mut(&id) {
                m.learner = cs.learners.contains(&id);
            }
        }
        self.mem.wl().set_conf_state(cs);
        Ok(())
    }

    fn own_tag(&self, ctx: &[u8]) -> Option<u64> {
        if ctx.len() != 16 {
            return None;
        }
        let id = u64::from_le_bytes(ctx[..8].try_into().expect("8 bytes"));
        (id == self.shared.id).then(|| u64::from_le_bytes(ctx[8..].try_into().expect("8 bytes")))
    }

    fn after_apply(&mut self) -> Result<()> {
        let (applied, revision, compact) = {
            let sm = self.shared.sm.read().unwrap_or_else(|p| p.into_inner());
            (
                sm.applied_index,
                sm.mvcc.revision(),
                sm.mvcc.compact_revision(),
            )
        };
        {
            let mut st = lock(&self.shared.status);
            st.applied_index = applied;
            st.revision = revision;
            st.compact_revision = compact;
            st.term = self.raw.raft.term;
            st.commit_index = self.raw.raft.raft_log.committed;
            st.snapshot_index = self.last_snapshot;
            if !self.leader && st.leader == self.shared.id {
                st.leader = 0;
            }
        }
        let mut still = Vec::new();
        for (index, reply) in self.read_waiters.drain(..) {
            if index <= applied {
                reply.send(Ok(index));
            } else {
                still.push((index, reply));
            }
        }
        self.read_waiters = still;
        {
            let (m, cv) = &self.shared.applied;
            let mut g = lock(m);
            if *g != applied {
                *g = applied;
                cv.notify_all();
            }
        }
        if applied >= self.last_snapshot + self.timing.snapshot_entries {
            self.take_snapshot(applied)?;
        }
        Ok(())
    }

    fn take_snapshot(&mut self, applied: u64) -> Result<()> {
        // The commit index that covers `applied` may sit in an unsynced write; it becomes
        // durable before the state it covers does, or a power loss could leave a snapshot
        // ahead of the durable commit index and restart would drop acknowledged entries.
        self.log.sync()?;
        {
            let sm = self.shared.sm.read().unwrap_or_else(|p| p.into_inner());
            self.snaps.save_state(&sm)?;
        }
        self.last_snapshot = applied;
        let keep_from = applied.saturating_sub(self.timing.snapshot_trail).max(1);
        let first = self.mem.first_index()?;
        if keep_from > first {
            self.mem.wl().compact(keep_from)?;
            self.log.compact_to(keep_from);
        }
        tracing::debug!(member = self.shared.id, index = applied, "took a snapshot");
        Ok(())
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Sends a request to the loop and waits for its reply.
pub fn ask<T>(
    shared: &Shared,
    make: impl FnOnce(Responder<Result<T>>) -> NodeMsg,
    timeout: Duration,
    what: &str,
) -> Result<T> {
    if shared.stopped.load(Ordering::SeqCst) {
        return Err(StoreError::Stopped);
    }
    let (tx, rx) = reply::pair();
    let sent = Instant::now();
    shared
        .tx
        .send_timeout(make(tx), timeout)
        .map_err(|e| match e {
            crossbeam_channel::SendTimeoutError::Timeout(_) => {
                StoreError::Timeout(format!("{what} (the raft loop is backed up)"))
            }
            crossbeam_channel::SendTimeoutError::Disconnected(_) => StoreError::Stopped,
        })?;
    match rx.recv_timeout(timeout.saturating_sub(sent.elapsed())) {
        Ok(r) => r,
        Err(Closed::Timeout) => Err(StoreError::Timeout(what.into())),
        Err(Closed::Dropped) => Err(StoreError::Stopped),
    }
}
