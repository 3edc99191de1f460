//! The client-facing side of a master: one thread per connection, requests answered in order.
//!
//! Writes become raft proposals and are answered once applied. Reads are linearizable by
//! default: the master asks raft for a read index (a heartbeat round that proves it is still
//! the leader), waits until it has applied that far, then reads; each attempt has a timeout and
//! a retry uses a fresh read context. A serializable read skips that round. A watch turns the
//! connection into a stream fed from the applied history.

use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

use crate::api::{KeyRange, Status, WatchRequest, WatchResponse};
use crate::conns::Conns;
use crate::error::{Result, StoreError};
use crate::node::{NodeMsg, Shared, ask, now_ms};
use crate::state_machine::{Applied, Command, Proposal, RequestId};
use crate::transport::lock;
use crate::wire::{self, ClientRequest, ClientResponse, ErrorReply, Op, Reply};

/// The longest lease TTL a grant may ask for, as in etcd (about 285 years).
pub const MAX_LEASE_TTL_SECS: u64 = 9_000_000_000;

/// How long one write may wait for its entry to apply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one ReadIndex attempt may take before a retry with a fresh context.
const READ_INDEX_ATTEMPT: Duration = Duration::from_millis(1000);
/// Client connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 4096;
/// How long a linearizable read may take in all.
const READ_TIMEOUT: Duration = Duration::from_secs(4);

/// Settings of the client server.
#[derive(Clone)]
pub struct ServerOptions {
    /// Accept the test-only partition request.
    pub fault_injection: bool,
    /// Interval of watch progress notifications.
    pub progress_interval: Duration,
}

/// A running client listener.
pub struct Server {
    stop: Arc<AtomicBool>,
    conns: Conns,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves clients.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the address cannot be bound.
    pub fn start(addr: &str, shared: Arc<Shared>, opts: ServerOptions) -> Result<Server> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| StoreError::io(format!("binding the client address {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| StoreError::io("client listener", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Conns::default();
        let (s, open) = (Arc::clone(&stop), conns.clone());
        let thread = thread::Builder::new()
            .name(format!("client-accept-{}", shared.id))
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let n = open.len();
                            if n >= MAX_CONNECTIONS {
                                tracing::warn!(
                                    open = n,
                                    "client connection refused: too many open"
                                );
                                continue;
                            }
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_nodelay(true);
                            let Ok(tracked) = open.track(&stream) else {
                                continue;
                            };
                            let (sh, o) = (Arc::clone(&shared), opts.clone());
                            let _ = thread::Builder::new().name("client-conn".into()).spawn(
                                move || {
                                    serve_connection(stream, sh, o);
                                    // The connection is done: its descriptor goes back now.
                                    drop(tracked);
                                },
                            );
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .map_err(|e| StoreError::io("spawning the client acceptor", e))?;
        Ok(Server {
            stop,
            conns,
            thread: Some(thread),
        })
    }

    /// Stops accepting and closes every client connection.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.conns.close_all();
    }

    /// How many client connections are open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }
}

fn serve_connection(stream: TcpStream, shared: Arc<Shared>, opts: ServerOptions) {
    let remote = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let Ok(w) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(w);
    loop {
        let frame = match wire::read_frame_limited(&mut reader, &remote, wire::MAX_REQUEST) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "client connection closed");
                if matches!(e, StoreError::MalformedMessage { .. }) {
                    let _ = send(&mut writer, &Err(ErrorReply::Invalid(e.to_string())));
                }
                return;
            }
        };
        let req: ClientRequest = match wire::decode(&frame, &remote) {
            Ok(r) => r,
            Err(e) => {
                let resp: ClientResponse = Err(ErrorReply::Invalid(e.to_string()));
                let _ = send(&mut writer, &resp);
                return;
            }
        };
        if req.cluster_id != 0 && req.cluster_id != shared.cluster_id {
            let resp: ClientResponse =
                Err(ErrorReply::WrongCluster(shared.cluster_id, req.cluster_id));
            let _ = send(&mut writer, &resp);
            return;
        }
        if let Op::Watch(w) = req.op {
            serve_watch(&mut writer, &shared, w, &opts);
            return;
        }
        let resp = handle(&shared, req.id, req.op, &opts).map_err(ErrorReply::from);
        if send(&mut writer, &resp).is_err() {
            return;
        }
    }
}

fn send(w: &mut BufWriter<TcpStream>, resp: &ClientResponse) -> std::io::Result<()> {
    wire::write_frame(w, &wire::encode(resp))?;
    w.flush()
}

fn write(shared: &Shared, id: Option<RequestId>, command: Command) -> Result<Reply> {
    let proposal = Proposal {
        request: id,
        command,
    };
    let applied = ask(
        shared,
        |tx| NodeMsg::Propose(proposal, tx),
        WRITE_TIMEOUT,
        "write",
    )?;
    match applied {
        Applied::Refused(r) => Err(r.into()),
        a => Ok(Reply::Applied(a)),
    }
}

/// Waits for a linearizable read point: retries ReadIndex with a fresh context per attempt.
fn read_barrier(shared: &Shared) -> Result<()> {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        if lock(&shared.status).leader == 0 {
            return Err(StoreError::NotLeader { leader: None });
        }
        match ask(shared, NodeMsg::ReadIndex, READ_INDEX_ATTEMPT, "read index") {
            Ok(_) => return Ok(()),
            Err(StoreError::Timeout(_)) if Instant::now() < deadline => continue,
            Err(StoreError::Timeout(_)) => {
                return Err(StoreError::Timeout(
                    "linearizable read (no quorum confirmed the leader)".into(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

fn conf_change(shared: &Shared, kind: ConfChangeType, id: u64, context: Vec<u8>) -> Result<Reply> {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = id;
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![single].into());
    cc.context = context.into();
    ask(
        shared,
        |tx| NodeMsg::ConfChange(cc, tx),
        WRITE_TIMEOUT,
        "membership change",
    )?;
    Ok(Reply::Done)
}

fn handle(shared: &Shared, id: Option<RequestId>, op: Op, opts: &ServerOptions) -> Result<Reply> {
    match op {
        Op::Put(p) => write(shared, id, Command::Put(p)),
        Op::Delete(d) => write(shared, id, Command::Delete(d)),
        Op::Txn(t) => write(shared, id, Command::Txn(t)),
        Op::Compact(rev) => write(shared, id, Command::Compact(rev)),
        Op::LeaseGrant {
            id: lease,
            ttl_secs,
        } => {
            if ttl_secs == 0 || ttl_secs > MAX_LEASE_TTL_SECS {
                return Err(StoreError::InvalidRequest(format!(
                    "a lease TTL of {ttl_secs} s is out of range: it must be 1 to \
                     {MAX_LEASE_TTL_SECS} s"
                )));
            }
            let lease = if lease == 0 {
                (rand::random::<u64>() >> 1).max(1)
            } else {
                lease
            };
            let deadline_ms = now_ms().saturating_add(ttl_secs * 1000);
            write(
                shared,
                id,
                Command::LeaseGrant {
                    id: lease,
                    ttl_secs,
                    deadline_ms,
                },
            )
        }
        Op::LeaseKeepAlive(lease) => {
            let ttl = shared
                .sm
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .leases
                .get(&lease)
                .map(|l| l.ttl_secs);
            let ttl = ttl.ok_or(StoreError::LeaseNotFound(lease))?;
            write(
                shared,
                id,
                Command::LeaseKeepAlive {
                    id: lease,
                    deadline_ms: now_ms().saturating_add(ttl.saturating_mul(1000)),
                },
            )
        }
        Op::LeaseRevoke(lease) => write(shared, id, Command::LeaseRevoke { id: lease }),
        Op::LeaseTimeToLive(lease) => {
            let ttl = ask(
                shared,
                |tx| NodeMsg::TimeToLive(lease, tx),
                WRITE_TIMEOUT,
                "lease time-to-live",
            )?;
            Ok(Reply::TimeToLive(ttl))
        }
        Op::Range(r) => {
            if !r.serializable {
                read_barrier(shared)?;
            }
            let sm = shared.sm.read().unwrap_or_else(|p| p.into_inner());
            Ok(Reply::Range(sm.mvcc.range(&r)))
        }
        Op::Status => Ok(Reply::Status(status(shared))),
        Op::MemberAddLearner(m) => {
            if m.id == 0 {
                return Err(StoreError::InvalidRequest("member id 0 is reserved".into()));
            }
            conf_change(
                shared,
                ConfChangeType::AddLearnerNode,
                m.id,
                wire::encode(&m),
            )
        }
        Op::MemberPromote(mid) => conf_change(shared, ConfChangeType::AddNode, mid, Vec::new()),
        Op::MemberRemove(mid) => conf_change(shared, ConfChangeType::RemoveNode, mid, Vec::new()),
        Op::Partition(ids) => {
            if !opts.fault_injection {
                return Err(StoreError::InvalidRequest(
                    "fault injection is off on this master".into(),
                ));
            }
            shared.transport.set_partition(&ids);
            Ok(Reply::Done)
        }
        Op::TransferLeader(to) => {
            shared
                .tx
                .send(NodeMsg::TransferLeader(to))
                .map_err(|_| StoreError::Stopped)?;
            Ok(Reply::Done)
        }
        Op::Watch(_) => Err(StoreError::InvalidRequest(
            "watch on a request connection".into(),
        )),
    }
}

/// This member's status.
pub fn status(shared: &Shared) -> Status {
    let mut st = lock(&shared.status).clone();
    let sm = shared.sm.read().unwrap_or_else(|p| p.into_inner());
    st.members = sm.members.values().cloned().collect();
    st.revision = sm.mvcc.revision();
    st.compact_revision = sm.mvcc.compact_revision();
    st.applied_index = sm.applied_index;
    st
}

/// Whether the client closed its end (checked while a watch is idle, so that abandoned watches
/// do not keep their thread).
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let closed = matches!(s.peek(&mut b), Ok(0));
    let _ = s.set_nonblocking(false);
    closed
}

fn serve_watch(
    w: &mut BufWriter<TcpStream>,
    shared: &Shared,
    req: WatchRequest,
    opts: &ServerOptions,
) {
    let range: KeyRange = req.range.clone();
    let mut next = if req.start_revision == 0 {
        shared
            .sm
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .mvcc
            .revision()
            + 1
    } else {
        req.start_revision
    };
    // The first message confirms the watch and tells where it starts.
    if send(
        w,
        &Ok(Reply::Watch(WatchResponse {
            revision: next - 1,
            events: Vec::new(),
        })),
    )
    .is_err()
    {
        return;
    }
    let mut last_sent = Instant::now();
    while !shared.stopped.load(Ordering::SeqCst) {
        let seen = *lock(&shared.applied.0);
        let found = {
            let sm = shared.sm.read().unwrap_or_else(|p| p.into_inner());
            sm.mvcc.events_since(next, &range, req.prev_kv, 1000)
        };
        match found {
            Err(e) => {
                let _ = send(w, &Err(ErrorReply::from(e)));
                return;
            }
            Ok((events, last)) if !events.is_empty() => {
                next = last + 1;
                if send(
                    w,
                    &Ok(Reply::Watch(WatchResponse {
                        revision: last,
                        events,
                    })),
                )
                .is_err()
                {
                    return;
                }
                last_sent = Instant::now();
            }
            Ok((_, last)) => {
                next = next.max(last + 1);
                if last_sent.elapsed() >= Duration::from_secs(1) && peer_closed(w.get_ref()) {
                    return;
                }
                if req.progress_notify && last_sent.elapsed() >= opts.progress_interval {
                    let progress = WatchResponse {
                        revision: next - 1,
                        events: Vec::new(),
                    };
                    if send(w, &Ok(Reply::Watch(progress))).is_err() {
                        return;
                    }
                    last_sent = Instant::now();
                }
                shared.wait_applied(seen, Duration::from_millis(100));
            }
        }
    }
}
