//! One master: a raft node, its peer transport and its client server, started from a
//! [`MasterConfig`]. Run it in-process with [`Master::start`], or as a process with the
//! `podvisor-master` binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Member, Status};
use crate::error::{Result, StoreError};
use crate::node::{self, NodeMsg, NodeStart, NodeTiming, Shared};
use crate::server::{self, Server, ServerOptions};

/// Everything a master needs to start.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// This master's id (raft node id), never 0.
    pub id: u64,
    /// Id shared by every member of the cluster; peers and clients of another cluster are
    /// refused.
    pub cluster_id: u64,
    /// Where the raft log and snapshots live.
    pub data_dir: PathBuf,
    /// The initial members, this one included (used to bootstrap an empty data directory and
    /// to find peers).
    pub members: Vec<Member>,
    /// Address to listen on for peers; defaults to this member's `peer_addr`.
    pub peer_listen: Option<String>,
    /// Address to listen on for clients; defaults to this member's `client_addr`.
    pub client_listen: Option<String>,
    /// Start empty and wait for the leader (a member added with add-learner).
    pub join: bool,
    /// One raft tick.
    pub tick: Duration,
    /// Ticks before an election (randomized up to twice this).
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between snapshots.
    pub snapshot_entries: u64,
    /// Entries kept behind a snapshot.
    pub snapshot_trail: u64,
    /// Accept the test-only partition request from clients.
    pub fault_injection: bool,
    /// Interval of watch progress notifications.
    pub progress_interval: Duration,
}

impl MasterConfig {
    /// A configuration with podvisor's default timing: 50 ms ticks, elections after 500 ms to
    /// 1 s of silence, heartbeats every 100 ms, a snapshot every 100,000 entries (etcd's
    /// default snapshot count).
    ///
    /// A snapshot writes the whole state, history included, so its cost grows with the state
    /// while the interval is fixed: a shorter interval trades CPU on every master for a shorter
    /// log to keep in memory and replay on restart.
    pub fn new(
        id: u64,
        cluster_id: u64,
        data_dir: impl Into<PathBuf>,
        members: Vec<Member>,
    ) -> Self {
        MasterConfig {
            id,
            cluster_id,
            data_dir: data_dir.into(),
            members,
            peer_listen: None,
            client_listen: None,
            join: false,
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 100_000,
            snapshot_trail: 2_000,
            fault_injection: false,
            progress_interval: Duration::from_millis(500),
        }
    }

    /// Checks what a master cannot run with: a reserved id, an empty data directory path, a
    /// member id or address given twice.
    fn validate(&self) -> Result<()> {
        if self.id == 0 {
            return Err(StoreError::Config("member id 0 is reserved".into()));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(StoreError::Config(
                "the data directory path is empty".into(),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut addrs = std::collections::HashMap::new();
        for m in &self.members {
            if !ids.insert(m.id) {
                return Err(StoreError::Config(format!(
                    "member {} is listed more than once",
                    m.id
                )));
            }
            for addr in [&m.peer_addr, &m.client_addr] {
                if let Some(other) = addrs.insert(addr.clone(), m.id) {
                    return Err(StoreError::Config(format!(
                        "address {addr} is given to member {other} and to member {}",
                        m.id
                    )));
                }
            }
        }
        self.me().map(|_| ())
    }

    fn me(&self) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.id == self.id)
            .ok_or_else(|| {
                StoreError::Config(format!("member {} is not in the member list", self.id))
            })
    }
}

/// The file that names the member and the cluster a data directory belongs to.
const IDENTITY_FILE: &str = "member";

/// Refuses a data directory of another member or another cluster, whose votes and log this
/// member must never take as its own; a new directory (or one from before the file) gets it.
fn check_identity(dir: &Path, cluster_id: u64, id: u64) -> Result<()> {
    let path = dir.join(IDENTITY_FILE);
    let want = format!("podvisor member {id} of cluster {cluster_id:#x}\n");
    match std::fs::read_to_string(&path) {
        Ok(have) if have == want => Ok(()),
        Ok(have) => Err(StoreError::Config(format!(
            "{} holds the data of {:?}, not of member {id} of cluster {cluster_id:#x}: start \
             it with its own id and cluster id, or give this member a directory of its own",
            dir.display(),
            have.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
            let io = |e| StoreError::io(format!("writing {}", path.display()), e);
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(want.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)
        }
        Err(e) => Err(StoreError::io(format!("reading {}", path.display()), e)),
    }
}

/// A running master.
pub struct Master {
    shared: Arc<Shared>,
    server: Server,
    raft: Option<std::thread::JoinHandle<()>>,
    client_addr: String,
}

impl Master {
    /// Opens the data directory, binds both addresses and starts serving.
    ///
    /// # Errors
    /// [`StoreError::Config`] for an invalid configuration, [`StoreError::LogEngine`] or
    /// [`StoreError::Corrupt`] when the data directory fails its checks, [`StoreError::Io`]
    /// when an address cannot be bound.
    pub fn start(cfg: MasterConfig) -> Result<Master> {
        cfg.validate()?;
        let me = cfg.me()?.clone();
        let peer_listen = cfg.peer_listen.clone().unwrap_or(me.peer_addr.clone());
        let client_listen = cfg.client_listen.clone().unwrap_or(me.client_addr.clone());
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| StoreError::io(format!("creating {}", cfg.data_dir.display()), e))?;
        check_identity(&cfg.data_dir, cfg.cluster_id, cfg.id)?;
        let (shared, raft) = node::start(NodeStart {
            id: cfg.id,
            cluster_id: cfg.cluster_id,
            data_dir: cfg.data_dir.clone(),
            members: cfg.members.clone(),
            join: cfg.join,
            peer_listen,
            timing: NodeTiming {
                tick: cfg.tick,
                election_ticks: cfg.election_ticks,
                heartbeat_ticks: cfg.heartbeat_ticks,
                snapshot_entries: cfg.snapshot_entries.max(1),
                snapshot_trail: cfg.snapshot_trail,
            },
        })?;
        let opts = ServerOptions {
            fault_injection: cfg.fault_injection,
            progress_interval: cfg.progress_interval,
        };
        let server = match Server::start(&client_listen, Arc::clone(&shared), opts) {
            Ok(s) => s,
            Err(e) => {
                let _ = shared.tx.send(NodeMsg::Stop);
                let _ = raft.join();
                return Err(e);
            }
        };
        Ok(Master {
            shared,
            server,
            raft: Some(raft),
            client_addr: me.client_addr,
        })
    }

    /// This master's id.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The address clients reach this master at.
    pub fn client_addr(&self) -> &str {
        &self.client_addr
    }

    /// This master's view of the cluster.
    pub fn status(&self) -> Status {
        server::status(&self.shared)
    }

    /// Whether this master is the leader now.
    pub fn is_leader(&self) -> bool {
        let st = self.status();
        st.leader == st.id
    }

    /// How many client connections this master holds open.
    pub fn open_client_connections(&self) -> usize {
        self.server.open_connections()
    }

    /// The error the raft loop stopped on, if it stopped on one.
    pub fn failure(&self) -> Option<String> {
        crate::transport::lock(&self.shared.failure).clone()
    }

    /// Test hook: drops all peer traffic to and from `ids` (empty heals).
    pub fn partition(&self, ids: &[u64]) {
        self.shared.transport.set_partition(ids);
    }

    /// Blocks until the raft loop ends (it ends on [`Master::stop`] or on a fatal error).
    pub fn wait(mut self) -> Option<String> {
        if let Some(t) = self.raft.take() {
            let _ = t.join();
        }
        self.server.stop();
        self.failure()
    }

    /// Stops serving and closes the data directory.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.server.stop();
        let _ = self.shared.tx.send(NodeMsg::Stop);
        if let Some(t) = self.raft.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.shutdown();
    }
}
