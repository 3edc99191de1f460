//! Multi-process fault tests: each master is its own `podvisor-master` process.
//!
//! Every test records a concurrent history of puts, gets and CAS transactions while it injects
//! its fault, and checks it for linearizability at the end.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::history::History;
use common::{Proc, client, members, wait_leader};
use podvisor_store::api::{KeyRange, Member, RangeRequest};

/// Maximum election timeout of the default timing (10 ticks of 50 ms, randomized up to 2x).
const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

struct Procs {
    _dir: tempfile::TempDir,
    members: Vec<Member>,
    procs: Vec<Proc>,
}

impl Procs {
    fn start() -> Procs {
        let dir = tempfile::tempdir().unwrap();
        let members = members(3);
        let procs = (1..=3)
            .map(|id| Proc::spawn(dir.path(), id, &members, &[]))
            .collect();
        let p = Procs {
            _dir: dir,
            members,
            procs,
        };
        wait_leader(&p.members, &[], Duration::from_secs(15));
        p
    }

    fn proc(&mut self, id: u64) -> &mut Proc {
        &mut self.procs[(id - 1) as usize]
    }

    fn logs_have_no_panic(&self) {
        for p in &self.procs {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            assert!(
                !log.contains("panicked"),
                "master {} panicked:\n{log}",
                p.id
            );
        }
    }
}

fn workers(
    p: &Procs,
    history: &History,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let ms = p.members.clone();
    history.spawn_workers(
        4,
        3,
        "lin/",
        move || client(&ms, Duration::from_secs(3)),
        Arc::clone(stop),
    )
}

#[test]
fn kill9_leader_under_load_resumes_writes_and_keeps_acknowledged_ones() {
    let mut p = Procs::start();
    let history = History::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = workers(&p, &history, &stop);

    // A writer of unique keys, recording every acknowledged one and when it was acknowledged.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(u64, Instant)>::new()));
    let (a, s, ms) = (Arc::clone(&acked), Arc::clone(&stop), p.members.clone());
    threads.push(std::thread::spawn(move || {
        let c = client(&ms, Duration::from_secs(5));
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            n += 1;
            if c.put(format!("acked/{n:08}"), "v").is_ok() {
                a.lock().unwrap().push((n, Instant::now()));
            }
        }
    }));
    std::thread::sleep(Duration::from_millis(1500));

    let leader = wait_leader(&p.members, &[], Duration::from_secs(5));
    let killed_at = Instant::now();
    p.proc(leader).kill9();
    let end = killed_at + Duration::from_secs(10);
    let resumed = loop {
        let after = acked
            .lock()
            .unwrap()
            .iter()
            .find(|(_, t)| *t > killed_at + Duration::from_millis(50))
            .map(|(_, t)| *t);
        if let Some(t) = after {
            break t - killed_at;
        }
        assert!(Instant::now() < end, "writes never resumed");
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("writes resumed {resumed:?} after kill -9 of leader {leader}");
    assert!(
        resumed <= 2 * ELECTION_TIMEOUT,
        "writes resumed only after {resumed:?}"
    );

    p.proc(leader).start();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let c = client(&p.members, Duration::from_secs(10));
    let r = c
        .range(RangeRequest {
            range: KeyRange::prefix("acked/"),
            ..Default::default()
        })
        .unwrap();
    let present: std::collections::HashSet<Vec<u8>> = r.kvs.into_iter().map(|kv| kv.key).collect();
    for (n, _) in acked.lock().unwrap().iter() {
        assert!(
            present.contains(format!("acked/{n:08}").as_bytes()),
            "acknowledged write {n} lost"
        );
    }
    let checked = history.check();
    eprintln!(
        "linearizable: {checked} steps, {} ok, {} unknown",
        history.ok.load(Ordering::Relaxed),
        history.unknown.load(Ordering::Relaxed)
    );
    p.logs_have_no_panic();
}

#[test]
fn a_master_listens_where_its_listen_flags_say() {
    let dir = tempfile::tempdir().unwrap();
    let members = members(3);
    let port = |addr: &str| addr.rsplit_once(':').unwrap().1.to_string();
    let (peer_port, client_port) = (port(&members[0].peer_addr), port(&members[0].client_addr));
    let wildcard = |p: &str| format!("0.0.0.0:{p}");
    let (lp, lc) = (wildcard(&peer_port), wildcard(&client_port));
    let _procs: Vec<Proc> = (1..=3)
        .map(|id| {
            let extra: &[&str] = if id == 1 {
                &["--listen-peer", &lp, "--listen-client", &lc]
            } else {
                &[]
            };
            Proc::spawn(dir.path(), id, &members, extra)
        })
        .collect();
    wait_leader(&members, &[], Duration::from_secs(15));
    // Bound to the wildcard address, master 1 answers on another loopback address too.
    let other = format!("127.0.0.2:{client_port}");
    let st = podvisor_store::member_status(&other, Duration::from_secs(5)).unwrap();
    assert_eq!(st.id, 1);
    client(&members, Duration::from_secs(10))
        .put("l", "v")
        .unwrap();
}

#[test]
fn stop_and_restart_all_three_keeps_data_and_revision() {
    let mut p = Procs::start();
    let c = client(&p.members, Duration::from_secs(10));
    for i in 0..200 {
        c.put(format!("r/{i:04}"), format!("v{i}")).unwrap();
    }
    c.delete(b"r/0007".to_vec()).unwrap();
    let before = c
        .range(RangeRequest {
            range: KeyRange::prefix("r/"),
            ..Default::default()
        })
        .unwrap();
    for id in 1..=3 {
        p.proc(id).kill9();
    }
    for id in 1..=3 {
        p.proc(id).start();
    }
    wait_leader(&p.members, &[], Duration::from_secs(15));
    let c = client(&p.members, Duration::from_secs(10));
    let after = c
        .range(RangeRequest {
            range: KeyRange::prefix("r/"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(after.kvs.len(), 199);
    p.logs_have_no_panic();
}

#[test]
fn isolated_leader_refuses_linearizable_reads_and_majority_serves() {
    let p = Procs::start();
    let history = History::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads = workers(&p, &history, &stop);
    std::thread::sleep(Duration::from_millis(800));

    let old = wait_leader(&p.members, &[], Duration::from_secs(5));
    let others: Vec<u64> = (1..=3).filter(|i| *i != old).collect();
    let one = |id: u64| {
        client(
            std::slice::from_ref(&p.members[(id - 1) as usize]),
            Duration::from_secs(3),
        )
    };
    one(old).partition(&others).unwrap();
    for o in &others {
        one(*o).partition(&[old]).unwrap();
    }
    let r = one(old).get("lin/0");
    assert!(
        r.is_err(),
        "the isolated leader served a linearizable read: {r:?}"
    );
    let majority: Vec<Member> = p.members.iter().filter(|m| m.id != old).cloned().collect();
    let mc = client(&majority, Duration::from_secs(10));
    mc.put("iso/k", "new").unwrap();
    assert_eq!(mc.get("iso/k").unwrap().unwrap().value, b"new");
    let r = one(old).get("iso/k");
    assert!(r.is_err(), "the isolated old leader answered: {r:?}");

    for id in 1..=3 {
        one(id).partition(&[]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    history.check();
    p.logs_have_no_panic();
}

#[test]
fn paused_leader_never_serves_a_stale_read() {
    let mut p = Procs::start();
    let history = History::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads = workers(&p, &history, &stop);
    let c = client(&p.members, Duration::from_secs(10));
    c.put("pause/k", "old").unwrap();

    let old = wait_leader(&p.members, &[], Duration::from_secs(5));
    p.proc(old).signal("-STOP");
    let new = wait_leader(&p.members, &[old], Duration::from_secs(10));
    assert_ne!(new, old);
    let survivors: Vec<Member> = p.members.iter().filter(|m| m.id != old).cloned().collect();
    client(&survivors, Duration::from_secs(10))
        .put("pause/k", "new")
        .unwrap();
    p.proc(old).signal("-CONT");

    // Right after waking, the old leader still believes it leads; its linearizable reads must
    // either fail or see the new value.
    let stale = client(
        std::slice::from_ref(&p.members[(old - 1) as usize]),
        Duration::from_secs(3),
    );
    for _ in 0..20 {
        if let Ok(Some(kv)) = stale.get("pause/k") {
            assert_eq!(kv.value, b"new", "stale read from the paused leader");
        }
    }
    // Once it has heard of the new leader, it serves reads again, and they are fresh.
    let end = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match stale.get("pause/k") {
            Ok(Some(kv)) => {
                assert_eq!(kv.value, b"new", "stale read from the old leader");
                break;
            }
            other => assert!(
                std::time::Instant::now() < end,
                "the old leader never served a read again: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    history.check();
    p.logs_have_no_panic();
}
