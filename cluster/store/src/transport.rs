//! Raft messages between masters over TCP.
//!
//! Each peer gets one sender thread fed by a bounded queue: when the queue is full the message
//! is dropped (raft retransmits) and raft is told the peer is unreachable. The sender drains
//! whatever is queued into one buffered write, so a busy leader sends many appends per
//! syscall, and it reconnects with backoff when the connection breaks.
//!
//! Inbound connections start with a [`PeerHello`]; a hello from another cluster, for another
//! member, from an id that is not a member, or that does not decode is refused with an error
//! and the connection is closed, and so is a connection whose frames fail their checksum or do
//! not decode as raft messages.
//!
//! For tests, a partition switch drops all traffic to and from chosen members, which isolates
//! a master without touching the host's network.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};

use crate::conns::{Conns, Tracked};
use crate::error::{Result, StoreError};
use crate::wire::{self, PEER_MAGIC, PeerHello, PeerHelloReply};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 8192;
/// Messages written per flush at most.
const SEND_BATCH: usize = 512;

/// What the transport tells the raft node.
pub enum Inbound {
    /// A message from a peer.
    Message(Box<Message>),
    /// A peer could not be reached.
    Unreachable(u64),
    /// A snapshot was sent (true) or failed (false).
    SnapshotSent(u64, bool),
}

/// Where inbound traffic goes.
pub type InboundSink = Arc<dyn Fn(Inbound) + Send + Sync>;

/// Counters an operator watches.
#[derive(Default)]
pub struct TransportMetrics {
    /// Messages dropped because a peer's queue was full or it was unreachable.
    pub dropped: AtomicU64,
    /// Connections refused for a bad hello or a malformed frame.
    pub refused: AtomicU64,
}

struct Peer {
    tx: Sender<Message>,
    addr: Arc<Mutex<String>>,
}

/// The TCP transport of one master.
pub struct Transport {
    id: u64,
    cluster_id: u64,
    peers: Mutex<HashMap<u64, Peer>>,
    blocked: Arc<RwLock<HashSet<u64>>>,
    sink: InboundSink,
    stop: Arc<AtomicBool>,
    conns: Conns,
    acceptor: Mutex<Option<thread::JoinHandle<()>>>,
    /// Counters.
    pub metrics: Arc<TransportMetrics>,
}

impl Transport {
    /// Binds `listen` and starts accepting peer connections.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the address cannot be bound.
    pub fn start(id: u64, cluster_id: u64, listen: &str, sink: InboundSink) -> Result<Arc<Self>> {
        let listener = TcpListener::bind(listen)
            .map_err(|e| StoreError::io(format!("binding the peer address {listen}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| StoreError::io("setting the peer listener non-blocking", e))?;
        let t = Arc::new(Transport {
            id,
            cluster_id,
            peers: Mutex::new(HashMap::new()),
            blocked: Arc::new(RwLock::new(HashSet::new())),
            sink,
            stop: Arc::new(AtomicBool::new(false)),
            conns: Conns::default(),
            acceptor: Mutex::new(None),
            metrics: Arc::new(TransportMetrics::default()),
        });
        let acceptor = Arc::clone(&t);
        let handle = thread::Builder::new()
            .name(format!("peer-accept-{id}"))
            .spawn(move || acceptor.accept_loop(listener))
            .map_err(|e| StoreError::io("spawning the peer acceptor", e))?;
        *lock(&t.acceptor) = Some(handle);
        Ok(t)
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        while !self.stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, remote)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_nodelay(true);
                    let Ok(tracked) = self.conns.track(&stream) else {
                        continue;
                    };
                    let me = Arc::clone(&self);
                    let _ = thread::Builder::new()
                        .name(format!("peer-read-{}", self.id))
                        .spawn(move || {
                            if let Err(e) = me.serve_inbound(stream, &remote.to_string()) {
                                if !me.stop.load(Ordering::Relaxed) {
                                    tracing::warn!(member = me.id, %remote, error = %e, "peer connection closed");
                                }
                            }
                            drop(tracked);
                        });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::warn!(member = self.id, error = %e, "accepting a peer failed");
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn refuse(&self, w: &mut TcpStream, reason: String) -> StoreError {
        self.metrics.refused.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        let _ = wire::write_frame(
            &mut out,
            &wire::encode(&PeerHelloReply::Refused(reason.clone())),
        );
        let _ = w.write_all(&out);
        StoreError::MalformedMessage {
            from: "peer".into(),
            reason,
        }
    }

    fn serve_inbound(&self, stream: TcpStream, remote: &str) -> Result<()> {
        let mut writer = stream
            .try_clone()
            .map_err(|e| StoreError::io("cloning a peer socket", e))?;
        let mut reader = BufReader::with_capacity(256 << 10, stream);
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)));
        let Some(first) = wire::read_frame(&mut reader, remote)? else {
            return Ok(());
        };
        let hello: PeerHello = match wire::decode(&first, remote) {
            Ok(h) => h,
            Err(e) => return Err(self.refuse(&mut writer, format!("bad hello: {e}"))),
        };
        if hello.magic != PEER_MAGIC {
            return Err(self.refuse(&mut writer, "not a podvisor peer".into()));
        }
        if hello.cluster_id != self.cluster_id {
            self.refuse(
                &mut writer,
                format!("wrong cluster id {:#x}", hello.cluster_id),
            );
            tracing::error!(member = self.id, %remote, got = hello.cluster_id, "peer from another cluster refused");
            return Err(StoreError::WrongCluster {
                expected: self.cluster_id,
                got: hello.cluster_id,
            });
        }
        if hello.to != self.id {
            return Err(self.refuse(
                &mut writer,
                format!("this is member {}, not {}", self.id, hello.to),
            ));
        }
        if !lock(&self.peers).contains_key(&hello.from) {
            return Err(self.refuse(
                &mut writer,
                format!("member {} is not a member of this cluster", hello.from),
            ));
        }
        let mut ok = Vec::new();
        let _ = wire::write_frame(&mut ok, &wire::encode(&PeerHelloReply::Accepted));
        writer
            .write_all(&ok)
            .map_err(|e| StoreError::io("answering a peer hello", e))?;
        let _ = reader.get_ref().set_read_timeout(None);

        let from = format!("member {} at {remote}", hello.from);
        while let Some(frame) = wire::read_frame(&mut reader, &from)? {
            let msg = Message::parse_from_bytes(&frame).map_err(|e| {
                self.metrics.refused.fetch_add(1, Ordering::Relaxed);
                StoreError::MalformedMessage {
                    from: from.clone(),
                    reason: e.to_string(),
                }
            })?;
            if msg.from != hello.from || msg.to != self.id {
                self.metrics.refused.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::MalformedMessage {
                    from,
                    reason: format!("message {}->{} on this connection", msg.from, msg.to),
                });
            }
            if self.is_blocked(msg.from) || self.stop.load(Ordering::Relaxed) {
                continue;
            }
            (self.sink)(Inbound::Message(Box::new(msg)));
        }
        Ok(())
    }

    fn is_blocked(&self, id: u64) -> bool {
        self.blocked
            .read()
            .map(|b| b.contains(&id))
            .unwrap_or(false)
    }

    /// Adds a peer or updates its address.
    pub fn set_peer(self: &Arc<Self>, id: u64, addr: &str) {
        if id == self.id {
            return;
        }
        let mut peers = lock(&self.peers);
        if let Some(p) = peers.get(&id) {
            *lock(&p.addr) = addr.to_string();
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(PEER_QUEUE);
        let addr = Arc::new(Mutex::new(addr.to_string()));
        let me = Arc::clone(self);
        let a = Arc::clone(&addr);
        let _ = thread::Builder::new()
            .name(format!("peer-send-{}-{id}", self.id))
            .spawn(move || me.send_loop(id, a, rx));
        peers.insert(id, Peer { tx, addr });
    }

    /// Stops sending to a removed member.
    pub fn remove_peer(&self, id: u64) {
        lock(&self.peers).remove(&id);
    }

    /// Queues messages for their peers; never blocks.
    pub fn send(&self, msgs: Vec<Message>) {
        let peers = lock(&self.peers);
        for msg in msgs {
            let to = msg.to;
            if self.is_blocked(to) {
                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(peer) = peers.get(&to) else {
                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            match peer.tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    (self.sink)(Inbound::Unreachable(to));
                    if snapshot {
                        (self.sink)(Inbound::SnapshotSent(to, false));
                    }
                }
            }
        }
    }

    /// Test hook: drops all traffic to and from `ids` (empty heals the partition).
    pub fn set_partition(&self, ids: &[u64]) {
        if let Ok(mut b) = self.blocked.write() {
            *b = ids.iter().copied().collect();
        }
    }

    /// Stops every thread and closes every connection.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        lock(&self.peers).clear();
        self.conns.close_all();
        // The listener closes when the acceptor returns; wait so the address is free again.
        let handle = lock(&self.acceptor).take();
        if let Some(h) = handle {
            if h.thread().id() != thread::current().id() {
                let _ = h.join();
            }
        }
    }

    fn connect(&self, to: u64, addr: &str) -> Result<(TcpStream, Tracked)> {
        use std::net::ToSocketAddrs;
        let sa = addr
            .to_socket_addrs()
            .map_err(|e| StoreError::io(format!("resolving {addr}"), e))?
            .next()
            .ok_or_else(|| StoreError::Config(format!("{addr} resolves to nothing")))?;
        let mut s = TcpStream::connect_timeout(&sa, Duration::from_millis(300))
            .map_err(|e| StoreError::io(format!("connecting to member {to} at {addr}"), e))?;
        let _ = s.set_nodelay(true);
        let hello = PeerHello {
            magic: PEER_MAGIC,
            cluster_id: self.cluster_id,
            from: self.id,
            to,
        };
        let mut buf = Vec::new();
        wire::write_frame(&mut buf, &wire::encode(&hello))
            .map_err(|e| StoreError::io("hello", e))?;
        s.write_all(&buf)
            .map_err(|e| StoreError::io(format!("greeting member {to}"), e))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let reply = wire::read_frame(&mut s, addr)?
            .ok_or_else(|| StoreError::Unavailable(format!("member {to} closed during hello")))?;
        match wire::decode::<PeerHelloReply>(&reply, addr)? {
            PeerHelloReply::Accepted => {}
            PeerHelloReply::Refused(why) => {
                return Err(StoreError::MalformedMessage {
                    from: addr.to_string(),
                    reason: format!("hello refused: {why}"),
                });
            }
        }
        let _ = s.set_read_timeout(None);
        let tracked = self
            .conns
            .track(&s)
            .map_err(|e| StoreError::io(format!("tracking the connection to member {to}"), e))?;
        Ok((s, tracked))
    }

    fn send_loop(self: Arc<Self>, to: u64, addr: Arc<Mutex<String>>, rx: Receiver<Message>) {
        let mut conn: Option<(BufWriter<TcpStream>, Tracked)> = None;
        let mut backoff = Duration::from_millis(20);
        let mut next_try = std::time::Instant::now();
        let mut snapshots = Vec::new();
        loop {
            let first = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(m) => m,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            };
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let mut batch = vec![first];
            while batch.len() < SEND_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            if conn.is_none() {
                if std::time::Instant::now() < next_try {
                    self.drop_batch(to, batch);
                    continue;
                }
                let a = lock(&addr).clone();
                match self.connect(to, &a) {
                    Ok((s, tracked)) => {
                        conn = Some((BufWriter::with_capacity(256 << 10, s), tracked));
                        backoff = Duration::from_millis(20);
                    }
                    Err(e) => {
                        tracing::debug!(member = self.id, peer = to, error = %e, "peer unreachable");
                        next_try = std::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                        self.drop_batch(to, batch);
                        continue;
                    }
                }
            }
            let (w, _) = conn.as_mut().expect("connected above");
            let mut failed = false;
            for msg in &batch {
                if msg.get_msg_type() == MessageType::MsgSnapshot {
                    snapshots.push(msg.to);
                }
                let bytes = msg.write_to_bytes().expect("raft messages always encode");
                if wire::write_frame(w, &bytes).is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed && w.flush().is_err() {
                failed = true;
            }
            for peer in snapshots.drain(..) {
                (self.sink)(Inbound::SnapshotSent(peer, !failed));
            }
            if failed {
                conn = None;
                self.metrics
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                (self.sink)(Inbound::Unreachable(to));
            }
        }
    }

    fn drop_batch(&self, to: u64, batch: Vec<Message>) {
        self.metrics
            .dropped
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        (self.sink)(Inbound::Unreachable(to));
        for m in batch {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                (self.sink)(Inbound::SnapshotSent(to, false));
            }
        }
    }
}

/// Locks a mutex, recovering the data if a thread panicked while holding it (the guarded
/// values here stay consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
