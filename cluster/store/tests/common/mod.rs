//! Helpers shared by the store's integration tests: in-process clusters, master processes.

#![allow(dead_code)]

pub mod history;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podvisor_store::api::Member;
use podvisor_store::{Client, ClientConfig, Master, MasterConfig, member_status};

/// A free loopback port below Linux's ephemeral range (32768 and up), so that no outgoing
/// connection of a test running beside this one can take it between this check and the bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread test processes apart; probe on from there.
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 25_000 + (start.wrapping_add(n.wrapping_mul(13)) % 7_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Members on fresh loopback ports.
pub fn members(n: u64) -> Vec<Member> {
    (1..=n)
        .map(|id| Member {
            id,
            peer_addr: format!("127.0.0.1:{}", free_port()),
            client_addr: format!("127.0.0.1:{}", free_port()),
            learner: false,
        })
        .collect()
}

/// Config of member `id` in `dir/m<id>`.
pub fn config(dir: &Path, id: u64, members: &[Member]) -> MasterConfig {
    let mut cfg = MasterConfig::new(id, 42, dir.join(format!("m{id}")), members.to_vec());
    cfg.fault_injection = true;
    cfg.progress_interval = Duration::from_millis(200);
    cfg
}

/// A client of all members with a given deadline.
pub fn client(members: &[Member], timeout: Duration) -> Client {
    let mut cfg = ClientConfig::new(
        &members
            .iter()
            .map(|m| m.client_addr.clone())
            .collect::<Vec<_>>(),
    );
    cfg.timeout = timeout;
    Client::with_config(cfg).unwrap()
}

/// An in-process cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    pub masters: Vec<Option<Master>>,
    pub tune: fn(&mut MasterConfig),
}

impl Cluster {
    pub fn start(n: u64) -> Cluster {
        Cluster::start_with(n, |_| {})
    }

    pub fn start_with(n: u64, tune: fn(&mut MasterConfig)) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let members = members(n);
        let masters = (1..=n)
            .map(|id| {
                let mut cfg = config(dir.path(), id, &members);
                tune(&mut cfg);
                Some(Master::start(cfg).unwrap())
            })
            .collect();
        let c = Cluster {
            dir,
            members,
            masters,
            tune,
        };
        c.wait_leader(Duration::from_secs(10));
        c
    }

    pub fn client(&self) -> Client {
        client(&self.members, Duration::from_secs(10))
    }

    pub fn leader(&self) -> Option<u64> {
        self.masters
            .iter()
            .flatten()
            .find(|m| m.is_leader())
            .map(|m| m.id())
    }

    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(l) = self.leader() {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no leader within {timeout:?}");
    }

    pub fn master(&self, id: u64) -> &Master {
        self.masters[(id - 1) as usize].as_ref().unwrap()
    }

    pub fn stop(&mut self, id: u64) {
        if let Some(m) = self.masters[(id - 1) as usize].take() {
            m.stop();
        }
    }

    pub fn restart(&mut self, id: u64) {
        self.stop(id);
        let mut cfg = config(self.dir.path(), id, &self.members);
        (self.tune)(&mut cfg);
        self.masters[(id - 1) as usize] = Some(Master::start(cfg).unwrap());
    }
}

/// Path of the master binary built by cargo for this test.
pub fn master_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_podvisor-master"))
}

/// A master running as its own process.
pub struct Proc {
    pub id: u64,
    pub child: Option<Child>,
    pub args: Vec<String>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(dir: &Path, id: u64, members: &[Member], extra: &[&str]) -> Proc {
        let mut args = vec![
            "--id".to_string(),
            id.to_string(),
            "--cluster-id".into(),
            "42".into(),
            "--data-dir".into(),
            dir.join(format!("m{id}")).display().to_string(),
            "--fault-injection".into(),
        ];
        for m in members {
            args.push("--member".into());
            args.push(format!("{}={},{}", m.id, m.peer_addr, m.client_addr));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = dir.join(format!("m{id}.log"));
        let mut p = Proc {
            id,
            child: None,
            args,
            log,
        };
        p.start();
        p
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(master_bin())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    /// Whether the process exited by itself (a crash or a refused start).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The leader as the members report it, asking each with a short timeout.
pub fn find_leader(members: &[Member], skip: &[u64]) -> Option<u64> {
    for m in members {
        if skip.contains(&m.id) {
            continue;
        }
        if let Ok(st) = member_status(&m.client_addr, Duration::from_millis(300)) {
            if st.leader != 0 && st.leader == st.id {
                return Some(st.id);
            }
        }
    }
    None
}

pub fn wait_leader(members: &[Member], skip: &[u64], timeout: Duration) -> u64 {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(l) = find_leader(members, skip) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no leader within {timeout:?}");
}
