//! The blocking client.
//!
//! A [`Client`] talks to one member at a time. It starts with the first endpoint that answers,
//! follows "not the leader" answers to the leader they name (or tries the next endpoint when
//! none is named), and retries until its deadline. Each write carries a request id (a random
//! client id and a sequence number); a retry reuses it, and the state machine answers a
//! duplicate from its memory instead of applying it again. When the deadline passes after a
//! write was sent, the error is [`StoreError::OutcomeUnknown`], never a guess.
//!
//! Methods take `&self` and may be called from several threads; calls on one client are
//! serialized, so open one client per concurrent caller for throughput.

use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::api::{
    DeleteRequest, DeleteResponse, KeyRange, KeyValue, LeaseGrant, LeaseTimeToLive, Member,
    PutRequest, PutResponse, RangeRequest, RangeResponse, Status, Txn, TxnResponse, WatchRequest,
    WatchResponse,
};
use crate::error::{Result, StoreError};
use crate::state_machine::{Applied, RequestId};
use crate::transport::lock;
use crate::wire::{self, ClientRequest, ClientResponse, ErrorReply, Op, Reply};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Client addresses of the masters.
    pub endpoints: Vec<String>,
    /// Expected cluster id, 0 for any.
    pub cluster_id: u64,
    /// How long one call may take, retries included.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Settings for these endpoints, any cluster, a 10 s deadline per call.
    pub fn new<S: AsRef<str>>(endpoints: &[S]) -> Self {
        ClientConfig {
            endpoints: endpoints.iter().map(|s| s.as_ref().to_string()).collect(),
            cluster_id: 0,
            timeout: Duration::from_secs(10),
        }
    }
}

struct Conn {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    /// The socket's read timeout as last set, to skip a system call per request.
    io_timeout: Option<Duration>,
    /// When the connection last carried an answer.
    last_used: Instant,
}

/// How long a connection may sit unused before a call checks that its member did not close it.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Conn {
    /// Whether an idle connection was closed by its member (it stopped, or dropped an idle
    /// client): a request must not be sent into it, where it would be lost with an unknown
    /// outcome. A busy connection is not checked, which costs nothing under load.
    fn closed_while_idle(&self) -> bool {
        if self.last_used.elapsed() < IDLE_CHECK {
            return false;
        }
        let s = self.reader.get_ref();
        if !self.reader.buffer().is_empty() || s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let closed = match s.peek(&mut b) {
            Ok(_) => true, // EOF, or bytes nobody asked for: either way, not usable
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        closed || s.set_nonblocking(false).is_err()
    }

    /// Bounds the next write and read by `remaining`, the time left to the call's deadline.
    ///
    /// The socket keeps its timeouts while they are at most `remaining` and no more than an
    /// eighth shorter, so calls that start with a full deadline reuse them; new ones are set a
    /// sixteenth short of `remaining`, leaving that slack for the next calls. (The reader and
    /// writer share one socket, so its send timeout covers the writer.)
    fn bound_io(&mut self, remaining: Duration) {
        let remaining = remaining.max(Duration::from_millis(10));
        if let Some(t) = self.io_timeout {
            if t <= remaining && t >= remaining - remaining / 8 {
                return;
            }
        }
        let t = remaining - remaining / 16;
        let socket = self.reader.get_ref();
        self.io_timeout = socket
            .set_read_timeout(Some(t))
            .and_then(|()| socket.set_write_timeout(Some(t)))
            .ok()
            .map(|()| t);
    }
}

struct State {
    conn: Option<Conn>,
    next_endpoint: usize,
    preferred: Option<String>,
    seq: u64,
}

/// A blocking client of the replicated store.
pub struct Client {
    cfg: ClientConfig,
    client_id: u64,
    state: Mutex<State>,
}

/// Whether `addr` reads as `HOST:PORT`: a name or an IPv4 address, or an IPv6 address in
/// brackets, and a port from 1 to 65535. Names are resolved only when connecting.
fn is_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    if !port.parse::<u16>().is_ok_and(|p| p != 0) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

fn connect_to(addr: &str, timeout: Duration) -> Result<Conn> {
    let sa = addr
        .to_socket_addrs()
        .map_err(|e| StoreError::io(format!("resolving {addr}"), e))?
        .next()
        .ok_or_else(|| StoreError::Config(format!("{addr} resolves to nothing")))?;
    let s = TcpStream::connect_timeout(&sa, timeout.min(Duration::from_secs(1)))
        .map_err(|e| StoreError::io(format!("connecting to {addr}"), e))?;
    let _ = s.set_nodelay(true);
    let w = s
        .try_clone()
        .map_err(|e| StoreError::io("cloning a socket", e))?;
    Ok(Conn {
        addr: addr.to_string(),
        reader: BufReader::new(s),
        writer: BufWriter::new(w),
        io_timeout: None,
        last_used: Instant::now(),
    })
}

impl Client {
    /// A client of the masters at `endpoints` (client addresses), with default settings.
    ///
    /// # Errors
    /// [`StoreError::Config`] when `endpoints` is empty or one is not `HOST:PORT`.
    pub fn connect<S: AsRef<str>>(endpoints: &[S]) -> Result<Client> {
        Client::with_config(ClientConfig::new(endpoints))
    }

    /// A client with explicit settings. Connections are made lazily, on the first call.
    ///
    /// # Errors
    /// [`StoreError::Config`] when there is no endpoint, or one is not `HOST:PORT`.
    pub fn with_config(cfg: ClientConfig) -> Result<Client> {
        if cfg.endpoints.is_empty() {
            return Err(StoreError::Config(
                "a client needs at least one endpoint".into(),
            ));
        }
        if let Some(bad) = cfg.endpoints.iter().find(|e| !is_host_port(e)) {
            return Err(StoreError::Config(format!(
                "endpoint {bad:?} is not HOST:PORT (a name or an IP address, and a port from 1 \
                 to 65535; IPv6 in brackets)"
            )));
        }
        Ok(Client {
            cfg,
            client_id: (rand::random::<u64>() >> 1).max(1),
            state: Mutex::new(State {
                conn: None,
                next_endpoint: 0,
                preferred: None,
                seq: 0,
            }),
        })
    }

    fn call(&self, op: Op, is_write: bool) -> Result<Reply> {
        let mut st = lock(&self.state);
        let id = if is_write {
            st.seq += 1;
            Some(RequestId {
                client: self.client_id,
                seq: st.seq,
            })
        } else {
            None
        };
        let req = wire::encode(&ClientRequest {
            cluster_id: self.cfg.cluster_id,
            id,
            op,
        });
        if req.len() > wire::MAX_REQUEST {
            return Err(StoreError::InvalidRequest(format!(
                "the request is {} bytes, over the {}-byte limit of one request",
                req.len(),
                wire::MAX_REQUEST
            )));
        }
        let deadline = Instant::now() + self.cfg.timeout;
        let mut sent = false;
        let mut last_err = String::from("no attempt");
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(if is_write && sent {
                    StoreError::OutcomeUnknown(last_err)
                } else {
                    StoreError::Unavailable(last_err)
                });
            }
            if st.conn.as_ref().is_some_and(Conn::closed_while_idle) {
                st.conn = None;
            }
            if st.conn.is_none() {
                let addr = match st.preferred.take() {
                    Some(a) => a,
                    None => {
                        let i = st.next_endpoint % self.cfg.endpoints.len();
                        st.next_endpoint += 1;
                        self.cfg.endpoints[i].clone()
                    }
                };
                match connect_to(&addr, deadline - now) {
                    Ok(c) => st.conn = Some(c),
                    Err(e) => {
                        last_err = e.to_string();
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
            let conn = st.conn.as_mut().expect("connected above");
            conn.bound_io(deadline - now);
            let outcome = wire::write_frame(&mut conn.writer, &req)
                .and_then(|()| conn.writer.flush())
                .map_err(|e| StoreError::io(format!("sending to {}", conn.addr), e))
                .and_then(|()| {
                    sent = true;
                    wire::read_frame(&mut conn.reader, &conn.addr)?.ok_or_else(|| {
                        StoreError::Unavailable(format!("{} closed the connection", conn.addr))
                    })
                })
                .and_then(|frame| wire::decode::<ClientResponse>(&frame, &conn.addr));
            match outcome {
                Ok(Ok(reply)) => {
                    conn.last_used = Instant::now();
                    return Ok(reply);
                }
                Ok(Err(ErrorReply::NotLeader(hint))) => {
                    let here = conn.addr.clone();
                    st.conn = None;
                    last_err = format!("{here} is not the leader");
                    match hint {
                        Some(leader) if leader != here => st.preferred = Some(leader),
                        _ => thread::sleep(Duration::from_millis(25)),
                    }
                }
                Ok(Err(ErrorReply::Timeout(what))) => {
                    // Retry (the same request id for a write): the next attempt either finds the
                    // write applied or applies it once.
                    last_err = what;
                    st.conn = None;
                }
                Ok(Err(ErrorReply::Other(what))) => {
                    last_err = what;
                    st.conn = None;
                    thread::sleep(Duration::from_millis(25));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => {
                    last_err = e.to_string();
                    st.conn = None;
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    fn write(&self, op: Op) -> Result<Applied> {
        match self.call(op, true)? {
            Reply::Applied(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `value` at `key`.
    ///
    /// # Errors
    /// [`StoreError::OutcomeUnknown`] when the write was sent but no answer came back before
    /// the deadline; [`StoreError::Unavailable`] when no member could be reached.
    pub fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<PutResponse> {
        self.put_with(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })
    }

    /// A put with every option.
    ///
    /// # Errors
    /// As [`Client::put`], and [`StoreError::LeaseNotFound`] for an unknown lease.
    pub fn put_with(&self, req: PutRequest) -> Result<PutResponse> {
        match self.write(Op::Put(req))? {
            Applied::Put(r) => Ok(r),
            other => Err(unexpected_applied(other)),
        }
    }

    /// Reads one key, linearizably.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no leader could confirm the read in time.
    pub fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<KeyValue>> {
        let r = self.range(RangeRequest {
            range: KeyRange::key(key),
            ..Default::default()
        })?;
        Ok(r.kvs.into_iter().next())
    }

    /// Reads one key from the connected member's local state (may be stale).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no member could be reached.
    pub fn get_serializable(&self, key: impl Into<Vec<u8>>) -> Result<Option<KeyValue>> {
        let r = self.range(RangeRequest {
            range: KeyRange::key(key),
            serializable: true,
            ..Default::default()
        })?;
        Ok(r.kvs.into_iter().next())
    }

    /// Reads a range of keys.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        match self.call(Op::Range(req), false)? {
            Reply::Range(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes one key.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub fn delete(&self, key: impl Into<Vec<u8>>) -> Result<DeleteResponse> {
        self.delete_range(KeyRange::key(key))
    }

    /// Deletes a range of keys.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub fn delete_range(&self, range: KeyRange) -> Result<DeleteResponse> {
        match self.write(Op::Delete(DeleteRequest {
            range,
            prev_kv: false,
        }))? {
            Applied::Delete(r) => Ok(r),
            other => Err(unexpected_applied(other)),
        }
    }

    /// Runs a transaction.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        match self.write(Op::Txn(txn))? {
            Applied::Txn(r) => Ok(r),
            other => Err(unexpected_applied(other)),
        }
    }

    /// Drops history below `revision`.
    ///
    /// # Errors
    /// [`StoreError::Compacted`] when already compacted past it, [`StoreError::FutureRevision`]
    /// when it is above the current revision.
    pub fn compact(&self, revision: u64) -> Result<()> {
        match self.write(Op::Compact(revision))? {
            Applied::Compacted(_) => Ok(()),
            other => Err(unexpected_applied(other)),
        }
    }

    /// Grants a lease of `ttl_secs` seconds.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub fn lease_grant(&self, ttl_secs: u64) -> Result<LeaseGrant> {
        match self.write(Op::LeaseGrant { id: 0, ttl_secs })? {
            Applied::LeaseGranted(g) => Ok(g),
            other => Err(unexpected_applied(other)),
        }
    }

    /// Refreshes a lease to its full TTL; returns the TTL.
    ///
    /// # Errors
    /// [`StoreError::LeaseNotFound`] when it expired or was revoked.
    pub fn lease_keep_alive(&self, id: u64) -> Result<u64> {
        match self.write(Op::LeaseKeepAlive(id))? {
            Applied::LeaseKeptAlive(ttl) => Ok(ttl),
            other => Err(unexpected_applied(other)),
        }
    }

    /// Revokes a lease, deleting its keys.
    ///
    /// # Errors
    /// [`StoreError::LeaseNotFound`] when it does not exist.
    pub fn lease_revoke(&self, id: u64) -> Result<()> {
        match self.write(Op::LeaseRevoke(id))? {
            Applied::LeaseRevoked => Ok(()),
            other => Err(unexpected_applied(other)),
        }
    }

    /// A lease's remaining time, as the leader sees it.
    ///
    /// # Errors
    /// [`StoreError::LeaseNotFound`] when it does not exist.
    pub fn lease_time_to_live(&self, id: u64) -> Result<LeaseTimeToLive> {
        match self.call(Op::LeaseTimeToLive(id), false)? {
            Reply::TimeToLive(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Adds a learner (a member that receives the log but does not vote yet).
    ///
    /// # Errors
    /// [`StoreError::InvalidRequest`] when raft refuses the change (another is in progress).
    pub fn member_add_learner(&self, member: Member) -> Result<()> {
        self.call(Op::MemberAddLearner(member), false).map(|_| ())
    }

    /// Promotes a learner to a voter.
    ///
    /// # Errors
    /// As [`Client::member_add_learner`].
    pub fn member_promote(&self, id: u64) -> Result<()> {
        self.call(Op::MemberPromote(id), false).map(|_| ())
    }

    /// Removes a member.
    ///
    /// # Errors
    /// As [`Client::member_add_learner`].
    pub fn member_remove(&self, id: u64) -> Result<()> {
        self.call(Op::MemberRemove(id), false).map(|_| ())
    }

    /// The status of whichever member the client is connected to.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no member answers.
    pub fn status(&self) -> Result<Status> {
        match self.call(Op::Status, false)? {
            Reply::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Test hook: asks the connected member to drop peer traffic to and from `ids`.
    ///
    /// # Errors
    /// [`StoreError::InvalidRequest`] unless the member runs with fault injection on.
    pub fn partition(&self, ids: &[u64]) -> Result<()> {
        self.call(Op::Partition(ids.to_vec()), false).map(|_| ())
    }

    /// Watches every key under `prefix` from `start_revision` (0: changes after now), with
    /// progress notifications.
    ///
    /// # Errors
    /// As [`Client::watch`].
    pub fn watch_prefix(&self, prefix: impl Into<Vec<u8>>, start_revision: u64) -> Result<Watcher> {
        self.watch(WatchRequest {
            range: KeyRange::prefix(prefix),
            start_revision,
            prev_kv: false,
            progress_notify: true,
        })
    }

    /// Watches one key from `start_revision` (0: changes after now), with progress
    /// notifications.
    ///
    /// # Errors
    /// As [`Client::watch`].
    pub fn watch_key(&self, key: impl Into<Vec<u8>>, start_revision: u64) -> Result<Watcher> {
        self.watch(WatchRequest {
            range: KeyRange::key(key),
            start_revision,
            prev_kv: false,
            progress_notify: true,
        })
    }

    /// Watches keys. The first batch is a progress notification confirming the watch and its
    /// start; the stream resumes by itself on another member when a member fails.
    ///
    /// A `start_revision` of 0 means every change after this call: the current revision is
    /// read (linearizably) before the call returns, and the watch starts just after it, so a
    /// write made once `watch` has returned is always seen. When no master answers that read,
    /// the watch starts at whatever is current when its stream first reaches one.
    ///
    /// # Errors
    /// None at creation; errors arrive on the [`Watcher`].
    pub fn watch(&self, mut req: WatchRequest) -> Result<Watcher> {
        if req.start_revision == 0 {
            let now = self.range(RangeRequest {
                range: req.range.clone(),
                limit: 1,
                count_only: true,
                serializable: false,
            });
            match now {
                Ok(r) => req.start_revision = r.revision + 1,
                Err(e) => {
                    tracing::debug!(error = %e, "no revision for a watch from now; the stream picks it");
                }
            }
        }
        Ok(Watcher::start(self.cfg.clone(), req))
    }
}

/// Talks to one member directly (no leader finding): for status checks of a given master.
///
/// # Errors
/// [`StoreError::Unavailable`] when it does not answer in time.
pub fn member_status(addr: &str, timeout: Duration) -> Result<Status> {
    let mut cfg = ClientConfig::new(&[addr]);
    cfg.timeout = timeout;
    Client::with_config(cfg)?.status()
}

fn unexpected(r: Reply) -> StoreError {
    StoreError::Unavailable(format!("unexpected reply {r:?}"))
}

fn unexpected_applied(a: Applied) -> StoreError {
    match a {
        Applied::Refused(r) => r.into(),
        other => StoreError::Unavailable(format!("unexpected reply {other:?}")),
    }
}

/// A watch stream. Batches arrive in revision order, never duplicated, never splitting a
/// revision. When the member serving it fails, the watcher reconnects to another and resumes
/// after the last revision it delivered.
pub struct Watcher {
    rx: Receiver<Result<WatchResponse>>,
    stop: Arc<AtomicBool>,
    socket: Arc<Mutex<Option<TcpStream>>>,
    done: bool,
}

impl Watcher {
    fn start(cfg: ClientConfig, req: WatchRequest) -> Watcher {
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let socket = Arc::new(Mutex::new(None));
        let (s, sock) = (Arc::clone(&stop), Arc::clone(&socket));
        let _ = thread::Builder::new().name("watch".into()).spawn(move || {
            let mut next = req.start_revision;
            let mut i = 0usize;
            let mut failures = 0u32;
            // Since when no member has served the watch, and whether that was reported.
            let mut down_since: Option<Instant> = None;
            let mut reported = false;
            while !s.load(Ordering::Relaxed) {
                let addr = cfg.endpoints[i % cfg.endpoints.len()].clone();
                i += 1;
                let Ok(mut conn) = connect_to(&addr, Duration::from_secs(1)) else {
                    failures += 1;
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if !reported && since.elapsed() >= cfg.timeout {
                        reported = true;
                        let why = format!(
                            "no member at {} answered for {:?}; the watch keeps trying",
                            cfg.endpoints.join(","),
                            cfg.timeout
                        );
                        if tx.send(Err(StoreError::Unavailable(why))).is_err() {
                            return;
                        }
                    }
                    thread::sleep(Duration::from_millis(50 * u64::from(failures.min(10))));
                    continue;
                };
                *lock(&sock) = conn.reader.get_ref().try_clone().ok();
                let mut r = req.clone();
                r.start_revision = next;
                let frame = wire::encode(&ClientRequest {
                    cluster_id: cfg.cluster_id,
                    id: None,
                    op: Op::Watch(r),
                });
                if wire::write_frame(&mut conn.writer, &frame)
                    .and_then(|()| conn.writer.flush())
                    .is_err()
                {
                    continue;
                }
                while let Ok(Some(f)) = wire::read_frame(&mut conn.reader, &addr) {
                    let resp = match wire::decode::<ClientResponse>(&f, &addr) {
                        Ok(Ok(Reply::Watch(w))) => w,
                        Ok(Err(ErrorReply::Compacted(rev))) => {
                            let _ = tx.send(Err(StoreError::Compacted {
                                compact_revision: rev,
                            }));
                            return;
                        }
                        Ok(Err(e)) => {
                            let e: StoreError = e.into();
                            if !e.is_retryable() {
                                let _ = tx.send(Err(e));
                                return;
                            }
                            break;
                        }
                        _ => break,
                    };
                    failures = 0;
                    down_since = None;
                    reported = false;
                    if next == 0 || resp.revision + 1 > next {
                        next = resp.revision + 1;
                    } else if !resp.events.is_empty() {
                        // A batch at or below what was delivered: never hand it out again.
                        continue;
                    }
                    if tx.send(Ok(resp)).is_err() {
                        return;
                    }
                }
                if s.load(Ordering::Relaxed) {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Watcher {
            rx,
            stop,
            socket,
            done: false,
        }
    }

    /// The next batch, waiting at most `timeout`; `Ok(None)` on timeout.
    ///
    /// # Errors
    /// [`StoreError::Compacted`] when the watch's start is below the compaction point; the
    /// stream ends after it. [`StoreError::Unavailable`], once per outage, when no member could
    /// be reached for the client's timeout: the watch keeps trying, and later calls deliver
    /// what it missed once a member answers again.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<WatchResponse>> {
        if self.done {
            return Err(StoreError::Stopped);
        }
        match self.rx.recv_timeout(timeout) {
            Ok(Ok(r)) => Ok(Some(r)),
            Ok(Err(e @ StoreError::Unavailable(_))) => Err(e),
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.done = true;
                Err(StoreError::Stopped)
            }
        }
    }
}

impl Iterator for Watcher {
    type Item = Result<WatchResponse>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.recv_timeout(Duration::from_secs(3600)) {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => continue,
                Err(StoreError::Stopped) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = lock(&self.socket).take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
