//! Put throughput, latency and failover of the podvisor store against etcd.
//!
//! Both run as three members on loopback in the same run, with fsync on every commit batch
//! (podvisor always syncs; Debian's etcd 3.4 always does too, as its `--unsafe-no-fsync`
//! switch only came in 3.5). Load: puts of 256-byte values from 1 and from 64
//! concurrent clients, `BENCH_SECS` seconds each (10 by default); podvisor's client for
//! podvisor and etcd's gRPC client (the etcd-client crate) for etcd, each aimed at its leader.
//! Failover: one client writes without pause, the leader is killed with SIGKILL, and the time
//! until the next acknowledged write is the unavailability; the median of three trials.
//!
//! Prints `bench: <name> ours=<v><unit> etcd=<v><unit> ratio=<ours/etcd>` lines.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use podvisor_store::api::Member;
use podvisor_store::{Client, ClientConfig, member_status};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn value() -> Vec<u8> {
    (0..256).map(|_| rand::random::<u8>()).collect()
}

fn key() -> String {
    format!("bench/{:06}", rand::random::<u32>() % 100_000)
}

#[derive(Clone, Copy)]
struct Load {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> Load {
    lat.sort_unstable();
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Load {
        ops_per_sec: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50).as_secs_f64() * 1000.0,
        p99_ms: pick(0.99).as_secs_f64() * 1000.0,
    }
}

// ---- podvisor ----

struct Ours {
    members: Vec<Member>,
    procs: Vec<Option<Child>>,
    args: Vec<Vec<String>>,
}

impl Ours {
    fn start(dir: &Path) -> Ours {
        let members: Vec<Member> = (1..=3)
            .map(|id| Member {
                id,
                peer_addr: format!("127.0.0.1:{}", free_port()),
                client_addr: format!("127.0.0.1:{}", free_port()),
                learner: false,
            })
            .collect();
        let args: Vec<Vec<String>> = (1..=3u64)
            .map(|id| {
                let mut a = vec![
                    "--id".to_string(),
                    id.to_string(),
                    "--data-dir".into(),
                    dir.join(format!("pv{id}")).display().to_string(),
                ];
                for m in &members {
                    a.push("--member".into());
                    a.push(format!("{}={},{}", m.id, m.peer_addr, m.client_addr));
                }
                a
            })
            .collect();
        let mut o = Ours {
            members,
            procs: vec![None, None, None],
            args,
        };
        for id in 1..=3 {
            o.spawn(id);
        }
        o.leader();
        o
    }

    fn spawn(&mut self, id: u64) {
        let child = Command::new(env!("CARGO_BIN_EXE_podvisor-master"))
            .args(&self.args[(id - 1) as usize])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podvisor-master starts");
        self.procs[(id - 1) as usize] = Some(child);
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs[(id - 1) as usize].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn leader(&self) -> u64 {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            for m in &self.members {
                if let Ok(st) = member_status(&m.client_addr, Duration::from_millis(300)) {
                    if st.leader == st.id && st.id != 0 {
                        return st.id;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("podvisor elected no leader");
    }

    fn client(&self, timeout: Duration) -> Client {
        let mut cfg = ClientConfig::new(
            &self
                .members
                .iter()
                .map(|m| m.client_addr.clone())
                .collect::<Vec<_>>(),
        );
        cfg.timeout = timeout;
        Client::with_config(cfg).unwrap()
    }

    fn load(&self, clients: usize, secs: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let c = self.client(Duration::from_secs(10));
                let s = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let v = value();
                    let mut lat = Vec::new();
                    c.put(key(), v.clone()).unwrap();
                    while !s.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        c.put(key(), v.clone()).unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let lat = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        summarize(lat, elapsed)
    }

    fn failover(&mut self) -> Duration {
        let leader = self.leader();
        let c = self.client(Duration::from_millis(300));
        c.put("failover", "warm").unwrap();
        let killed = Instant::now();
        self.kill(leader);
        let mut c = c;
        loop {
            match c.put("failover", "x") {
                Ok(_) => break,
                Err(_) => c = self.client(Duration::from_millis(300)),
            }
        }
        let took = killed.elapsed();
        self.spawn(leader);
        std::thread::sleep(Duration::from_secs(2));
        took
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        for id in 1..=3 {
            self.kill(id);
        }
    }
}

// ---- etcd ----

struct Etcd {
    clients: Vec<String>,
    procs: Vec<Option<Child>>,
    args: Vec<Vec<String>>,
}

impl Etcd {
    fn start(dir: &Path) -> Etcd {
        let peers: Vec<String> = (0..3)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let clients: Vec<String> = (0..3)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let initial = (0..3)
            .map(|i| format!("e{i}={}", peers[i]))
            .collect::<Vec<_>>()
            .join(",");
        let args = (0..3)
            .map(|i| {
                vec![
                    "--name".to_string(),
                    format!("e{i}"),
                    "--data-dir".into(),
                    dir.join(format!("etcd{i}")).display().to_string(),
                    "--listen-peer-urls".into(),
                    peers[i].clone(),
                    "--initial-advertise-peer-urls".into(),
                    peers[i].clone(),
                    "--listen-client-urls".into(),
                    clients[i].clone(),
                    "--advertise-client-urls".into(),
                    clients[i].clone(),
                    "--initial-cluster".into(),
                    initial.clone(),
                    "--initial-cluster-state".into(),
                    "new".into(),
                    "--initial-cluster-token".into(),
                    "podvisor-bench".into(),
                ]
            })
            .collect();
        let mut e = Etcd {
            clients,
            procs: vec![None, None, None],
            args,
        };
        for i in 0..3 {
            e.spawn(i);
        }
        e
    }

    fn spawn(&mut self, i: usize) {
        let child = Command::new("etcd")
            .args(&self.args[i])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd starts (Debian's etcd-server)");
        self.procs[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn leader(&self) -> usize {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            for (i, ep) in self.clients.iter().enumerate() {
                let Ok(Ok(mut c)) = tokio::time::timeout(
                    Duration::from_millis(500),
                    etcd_client::Client::connect([ep.as_str()], None),
                )
                .await
                else {
                    continue;
                };
                if let Ok(Ok(st)) =
                    tokio::time::timeout(Duration::from_millis(500), c.status()).await
                {
                    if st.leader() != 0 && st.leader() == st.header().map_or(0, |h| h.member_id()) {
                        return i;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("etcd elected no leader");
    }

    async fn load(&self, clients: usize, secs: u64) -> Load {
        let leader = self.leader().await;
        let ep = self.clients[leader].clone();
        // One gRPC connection per eight clients, as etcd's own benchmark spreads streams.
        let conns = clients.div_ceil(8);
        let mut cs = Vec::new();
        for _ in 0..conns {
            cs.push(
                etcd_client::Client::connect([ep.as_str()], None)
                    .await
                    .unwrap(),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for i in 0..clients {
            let mut kv = cs[i % conns].kv_client();
            let s = Arc::clone(&stop);
            tasks.push(tokio::spawn(async move {
                let v = value();
                let mut lat = Vec::new();
                kv.put(key(), v.clone(), None).await.unwrap();
                while !s.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    kv.put(key(), v.clone(), None).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        summarize(lat, elapsed)
    }

    async fn failover(&mut self) -> Duration {
        let leader = self.leader().await;
        let owned = self.clients.clone();
        let eps: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut c = etcd_client::Client::connect(eps.clone(), None)
            .await
            .unwrap();
        c.put("failover", "warm", None).await.unwrap();
        let killed = Instant::now();
        self.kill(leader);
        loop {
            match tokio::time::timeout(Duration::from_millis(300), c.put("failover", "x", None))
                .await
            {
                Ok(Ok(_)) => break,
                _ => {
                    if let Ok(Ok(n)) = tokio::time::timeout(
                        Duration::from_millis(300),
                        etcd_client::Client::connect(eps.clone(), None),
                    )
                    .await
                    {
                        c = n;
                    }
                }
            }
        }
        let took = killed.elapsed();
        self.spawn(leader);
        tokio::time::sleep(Duration::from_secs(2)).await;
        took
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

fn line(name: &str, ours: f64, etcd: f64, unit: &str) {
    let ratio = if etcd > 0.0 { ours / etcd } else { f64::NAN };
    println!("bench: {name} ours={ours:.2}{unit} etcd={etcd:.2}{unit} ratio={ratio:.2}");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run only when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut ours = Ours::start(dir.path());
    let mut etcd = Etcd::start(dir.path());
    rt.block_on(etcd.leader());

    let o1 = ours.load(1, secs);
    let e1 = rt.block_on(etcd.load(1, secs));
    let o64 = ours.load(64, secs);
    let e64 = rt.block_on(etcd.load(64, secs));
    line("store_put_1c_ops", o1.ops_per_sec, e1.ops_per_sec, "ops/s");
    line("store_put_1c_p50", o1.p50_ms, e1.p50_ms, "ms");
    line("store_put_1c_p99", o1.p99_ms, e1.p99_ms, "ms");
    line(
        "store_put_64c_ops",
        o64.ops_per_sec,
        e64.ops_per_sec,
        "ops/s",
    );
    line("store_put_64c_p50", o64.p50_ms, e64.p50_ms, "ms");
    line("store_put_64c_p99", o64.p99_ms, e64.p99_ms, "ms");

    let mut of = Vec::new();
    let mut ef = Vec::new();
    for _ in 0..3 {
        of.push(ours.failover());
        ef.push(rt.block_on(etcd.failover()));
    }
    line(
        "store_failover",
        median(of).as_secs_f64(),
        median(ef).as_secs_f64(),
        "s",
    );
}
