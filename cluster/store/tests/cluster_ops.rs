//! In-process three-master tests of every operation of the store.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use podvisor_store::StoreError;
use podvisor_store::api::{
    Compare, EventKind, KeyRange, PutRequest, RangeRequest, Txn, TxnOp, WatchRequest,
};

#[test]
fn put_get_range_delete_across_three_masters() {
    let c = Cluster::start(3);
    let client = c.client();
    let r1 = client.put("a/1", "x").unwrap();
    let r2 = client.put("a/2", "y").unwrap();
    assert_eq!(r2.revision, r1.revision + 1);
    client.put("b/1", "z").unwrap();
    assert_eq!(client.get("a/1").unwrap().unwrap().value, b"x");
    let r = client
        .range(RangeRequest {
            range: KeyRange::prefix("a/"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 2);
    let r = client
        .range(RangeRequest {
            range: KeyRange::interval("a/2", "b/2"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 2);
    let kv = client.put("a/1", "x2").unwrap();
    let got = client.get("a/1").unwrap().unwrap();
    assert_eq!(
        (got.create_revision, got.mod_revision, got.version),
        (r1.revision, kv.revision, 2)
    );
    assert_eq!(client.delete("a/1").unwrap().deleted, 1);
    assert!(client.get("a/1").unwrap().is_none());
    assert_eq!(
        client.delete_range(KeyRange::prefix("")).unwrap().deleted,
        2
    );

    // Every member converges on the same revision; serializable reads see it.
    let rev = client.status().unwrap().revision;
    let end = Instant::now() + Duration::from_secs(5);
    for m in &c.members {
        let one = common::client(std::slice::from_ref(m), Duration::from_secs(5));
        loop {
            let st = one.status().unwrap();
            if st.revision == rev {
                break;
            }
            assert!(
                Instant::now() < end,
                "member {} stuck at {}",
                m.id,
                st.revision
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(one.get_serializable("b/1").unwrap().is_none());
    }
}

#[test]
fn txn_compares_value_version_and_revisions() {
    let c = Cluster::start(3);
    let client = c.client();
    let p = client.put("k", "v1").unwrap();
    let txn = |cmp: Compare| Txn {
        compares: vec![cmp],
        success: vec![TxnOp::Put(PutRequest {
            key: b"k".to_vec(),
            value: b"won".to_vec(),
            ..Default::default()
        })],
        failure: vec![TxnOp::Range(RangeRequest {
            range: KeyRange::key("k"),
            ..Default::default()
        })],
    };
    assert!(
        !client
            .txn(txn(Compare::value_equals("k", "nope")))
            .unwrap()
            .succeeded
    );
    assert!(
        !client
            .txn(txn(Compare::version_equals("k", 2)))
            .unwrap()
            .succeeded
    );
    let r = client
        .txn(txn(Compare::mod_revision_equals("k", p.revision)))
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, p.revision + 1);
    let kv = client.get("k").unwrap().unwrap();
    assert_eq!(kv.value, b"won");
    let cmp = Compare {
        key: b"k".to_vec(),
        op: podvisor_store::api::CompareOp::Equal,
        target: podvisor_store::api::CompareTarget::CreateRevision(p.revision),
    };
    assert!(client.txn(txn(cmp)).unwrap().succeeded);
}

#[test]
fn watch_is_ordered_resumable_and_reports_compaction() {
    let c = Cluster::start(3);
    let client = c.client();
    let first = client.put("w/a", "1").unwrap().revision;
    client.put("w/b", "1").unwrap();
    client
        .txn(Txn {
            compares: vec![],
            success: vec![
                TxnOp::Put(PutRequest {
                    key: b"w/c".to_vec(),
                    ..Default::default()
                }),
                TxnOp::Put(PutRequest {
                    key: b"w/d".to_vec(),
                    ..Default::default()
                }),
            ],
            failure: vec![],
        })
        .unwrap();
    client.delete_range(KeyRange::prefix("w/")).unwrap();
    let last = client.put("w/e", "1").unwrap().revision;

    let mut w = client
        .watch(WatchRequest {
            range: KeyRange::prefix("w/"),
            start_revision: first,
            ..Default::default()
        })
        .unwrap();
    let mut events = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while events
        .last()
        .is_none_or(|e: &podvisor_store::api::Event| e.kv.mod_revision < last)
    {
        assert!(Instant::now() < end);
        if let Some(b) = w.recv_timeout(Duration::from_millis(500)).unwrap() {
            events.extend(b.events);
        }
    }
    let revs: Vec<u64> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert!(
        revs.windows(2).all(|p| p[0] <= p[1]),
        "out of order: {revs:?}"
    );
    assert_eq!(events.len(), 2 + 2 + 4 + 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Delete)
            .count(),
        4
    );

    // Compaction: a watch below the point gets a clear error; one at the point gets everything
    // after it, deletes included.
    let compact_at = first + 2;
    client.compact(compact_at).unwrap();
    let mut below = client
        .watch(WatchRequest {
            range: KeyRange::prefix("w/"),
            start_revision: first,
            ..Default::default()
        })
        .unwrap();
    let err = loop {
        match below.recv_timeout(Duration::from_secs(5)) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no compacted error"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, StoreError::Compacted { compact_revision } if compact_revision == compact_at)
    );
    let mut at = client
        .watch(WatchRequest {
            range: KeyRange::prefix("w/"),
            start_revision: compact_at,
            progress_notify: true,
            ..Default::default()
        })
        .unwrap();
    let mut got = Vec::new();
    let mut progress_seen = false;
    let end = Instant::now() + Duration::from_secs(10);
    while !progress_seen || got.len() < 7 {
        assert!(Instant::now() < end, "got {} events", got.len());
        if let Some(b) = at.recv_timeout(Duration::from_millis(500)).unwrap() {
            if b.is_progress() && b.revision >= last {
                progress_seen = true;
            }
            got.extend(b.events);
        }
    }
    assert_eq!(got.len(), 7);
    assert!(got.iter().all(|e| e.kv.mod_revision >= compact_at));
}

/// Receives from `w` until an event at `revision` or later arrives.
fn events_until(w: &mut podvisor_store::Watcher, revision: u64) -> Vec<podvisor_store::api::Event> {
    let mut events = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while events
        .last()
        .is_none_or(|e: &podvisor_store::api::Event| e.kv.mod_revision < revision)
    {
        assert!(Instant::now() < end, "only {} events arrived", events.len());
        if let Some(b) = w.recv_timeout(Duration::from_millis(500)).unwrap() {
            events.extend(b.events);
        }
    }
    events
}

#[test]
fn a_watch_from_now_sees_every_write_made_after_it_returns() {
    let c = Cluster::start(3);
    let client = c.client();
    client.put("now/k", "0").unwrap();
    for round in 0..5 {
        let mut w = client.watch_key("now/k", 0).unwrap();
        // No pause: the writes come the moment the call returns.
        let mut last = 0;
        for i in 1..=3 {
            last = client
                .put("now/k", format!("{round}.{i}"))
                .unwrap()
                .revision;
        }
        let events = events_until(&mut w, last);
        let values: Vec<&[u8]> = events.iter().map(|e| e.kv.value.as_slice()).collect();
        assert_eq!(values.len(), 3, "round {round}: {values:?}");
    }
}

#[test]
fn watch_open_across_compaction_delivers_every_later_event() {
    let c = Cluster::start(3);
    let client = c.client();
    let start = client.put("x/0", "0").unwrap().revision;
    let mut w = client.watch_prefix("x/", start).unwrap();
    for i in 1..=5 {
        client.put(format!("x/{i}"), "a").unwrap();
    }
    client.delete("x/1").unwrap();
    let before = client.put("x/2", "b").unwrap().revision;
    assert_eq!(events_until(&mut w, before).len(), 1 + 5 + 1 + 1);

    // Compact while the watch stays open, then write puts, deletes and a delete-range.
    client.compact(before).unwrap();
    client.put("x/6", "a").unwrap();
    client.delete("x/2").unwrap();
    client.delete_range(KeyRange::prefix("x/")).unwrap();
    let last = client.put("x/7", "a").unwrap().revision;
    let after = events_until(&mut w, last);
    let kinds: Vec<(EventKind, u64)> = after.iter().map(|e| (e.kind, e.kv.mod_revision)).collect();
    // x/6 put; x/2 delete; the delete-range removes x/0, x/3, x/4, x/5, x/6 at one revision.
    assert_eq!(after.len(), 1 + 1 + 5 + 1, "{kinds:?}");
    assert_eq!(
        after.iter().filter(|e| e.kind == EventKind::Delete).count(),
        6,
        "{kinds:?}"
    );
    assert!(after.iter().all(|e| e.kv.mod_revision > before));
    let range_rev = after[2].kv.mod_revision;
    assert!(after[2..7].iter().all(|e| e.kv.mod_revision == range_rev));
}

/// Sends one request, as a client would, to `addr` and returns its reply.
fn send_raw(
    addr: &str,
    req: &podvisor_store::wire::ClientRequest,
) -> podvisor_store::wire::ClientResponse {
    use podvisor_store::wire;
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    wire::write_frame(&mut buf, &wire::encode(req)).unwrap();
    s.write_all(&buf).unwrap();
    let frame = wire::read_frame(&mut s, "test").unwrap().expect("a reply");
    wire::decode(&frame, "test").unwrap()
}

#[test]
fn a_read_whose_read_index_is_lost_is_retried_with_a_fresh_context() {
    use podvisor_store::api::RangeRequest;
    use podvisor_store::wire::{ClientRequest, Op, Reply};
    let c = Cluster::start(3);
    let client = c.client();
    client.put("ri/k", "v").unwrap();
    let leader = c.wait_leader(Duration::from_secs(5));
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    // Cut the follower off from the leader for less than an election timeout: the ReadIndex
    // request it forwards is lost, and raft does not send it again. Only a new attempt, with
    // a new context, gets an answer once the link is back.
    c.master(follower).partition(&[leader]);
    c.master(leader).partition(&[follower]);
    let addr = c.members[follower as usize - 1].client_addr.clone();
    let started = Instant::now();
    let reader = std::thread::spawn(move || {
        send_raw(
            &addr,
            &ClientRequest {
                cluster_id: 42,
                id: None,
                op: Op::Range(RangeRequest {
                    range: KeyRange::key("ri/k"),
                    ..Default::default()
                }),
            },
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    c.master(follower).partition(&[]);
    c.master(leader).partition(&[]);
    match reader.join().unwrap() {
        Ok(Reply::Range(r)) => assert_eq!(r.kvs[0].value, b"v"),
        other => panic!("the read failed instead of retrying: {other:?}"),
    }
    // The answer came from a later attempt: the first one's context was lost.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_retried_write_is_applied_once_even_across_a_leader_change() {
    use podvisor_store::state_machine::{Applied, RequestId};
    use podvisor_store::wire::{ClientRequest, Op, Reply};
    let mut c = Cluster::start(3);
    let client = c.client();
    client.put("r/k", "0").unwrap();
    // The same write, with the same request id, as a client retrying after a lost reply.
    let req = ClientRequest {
        cluster_id: 42,
        id: Some(RequestId {
            client: 0x5eed,
            seq: 1,
        }),
        op: Op::Put(PutRequest {
            key: b"r/k".to_vec(),
            value: b"1".to_vec(),
            ..Default::default()
        }),
    };
    let revision_of = |reply| match reply {
        Ok(Reply::Applied(Applied::Put(p))) => p.revision,
        other => panic!("unexpected reply {other:?}"),
    };
    let leader = c.wait_leader(Duration::from_secs(5));
    let addr = c.members[leader as usize - 1].client_addr.clone();
    let first = revision_of(send_raw(&addr, &req));
    assert_eq!(revision_of(send_raw(&addr, &req)), first);

    // After the leader changes, the new leader knows the write too.
    c.restart(leader);
    let leader = c.wait_leader(Duration::from_secs(10));
    let addr = c.members[leader as usize - 1].client_addr.clone();
    let again = loop {
        match send_raw(&addr, &req) {
            Err(podvisor_store::wire::ErrorReply::NotLeader(_)) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            reply => break revision_of(reply),
        }
    };
    assert_eq!(again, first);
    let kv = client.get("r/k").unwrap().unwrap();
    assert_eq!((kv.version, kv.mod_revision), (2, first), "{kv:?}");
    assert_eq!(client.status().unwrap().revision, first);
}

#[test]
fn leases_expire_keys_and_keep_alive_extends() {
    let c = Cluster::start(3);
    let client = c.client();
    let short = client.lease_grant(1).unwrap();
    let long = client.lease_grant(30).unwrap();
    client
        .put_with(PutRequest {
            key: b"l/short".to_vec(),
            value: b"x".to_vec(),
            lease: short.id,
            prev_kv: false,
        })
        .unwrap();
    client
        .put_with(PutRequest {
            key: b"l/long".to_vec(),
            value: b"x".to_vec(),
            lease: long.id,
            prev_kv: false,
        })
        .unwrap();
    let ttl = client.lease_time_to_live(long.id).unwrap();
    assert!(
        ttl.remaining_ms > 28_000 && ttl.remaining_ms <= 30_000,
        "{ttl:?}"
    );
    assert_eq!(ttl.keys, vec![b"l/long".to_vec()]);
    let end = Instant::now() + Duration::from_secs(5);
    while client.get("l/short").unwrap().is_some() {
        assert!(Instant::now() < end, "short lease never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(matches!(
        client.lease_keep_alive(short.id),
        Err(StoreError::LeaseNotFound(_))
    ));
    assert_eq!(client.lease_keep_alive(long.id).unwrap(), 30);

    // Keep-alives hold a 2 s lease for three times its TTL; without them it expires.
    let kept = client.lease_grant(2).unwrap();
    client
        .put_with(PutRequest {
            key: b"l/kept".to_vec(),
            value: b"x".to_vec(),
            lease: kept.id,
            prev_kv: false,
        })
        .unwrap();
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(client.lease_keep_alive(kept.id).unwrap(), 2);
        let ttl = client.lease_time_to_live(kept.id).unwrap();
        assert!(
            ttl.remaining_ms > 1_500,
            "keep-alive did not extend: {ttl:?}"
        );
        assert!(
            client.get("l/kept").unwrap().is_some(),
            "expired while kept alive"
        );
    }
    let end = Instant::now() + Duration::from_secs(5);
    while client.get("l/kept").unwrap().is_some() {
        assert!(
            Instant::now() < end,
            "lease outlived its TTL without keep-alives"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A TTL out of range is refused, not overflowed into a wrong deadline.
    for bad in [0, podvisor_store::MAX_LEASE_TTL_SECS + 1, u64::MAX] {
        assert!(
            matches!(client.lease_grant(bad), Err(StoreError::InvalidRequest(_))),
            "TTL {bad} accepted"
        );
    }

    client.lease_revoke(long.id).unwrap();
    assert!(client.get("l/long").unwrap().is_none());
    assert!(matches!(
        client.put_with(PutRequest {
            key: b"x".to_vec(),
            lease: long.id,
            ..Default::default()
        }),
        Err(StoreError::LeaseNotFound(_))
    ));
}

#[test]
fn lease_ttl_stays_right_across_leader_changes() {
    let mut c = Cluster::start(3);
    let client = c.client();
    let lease = client.lease_grant(20).unwrap();
    let granted = Instant::now();
    for _ in 0..3 {
        let leader = c.wait_leader(Duration::from_secs(10));
        c.restart(leader);
        std::thread::sleep(Duration::from_millis(300));
        c.wait_leader(Duration::from_secs(10));
    }
    let ttl = client.lease_time_to_live(lease.id).unwrap();
    let expected = 20_000u64.saturating_sub(granted.elapsed().as_millis() as u64);
    let diff = ttl.remaining_ms.abs_diff(expected);
    assert!(
        diff < 1_000,
        "remaining {} ms, expected about {expected} ms",
        ttl.remaining_ms
    );
}

#[test]
fn linearizable_read_refused_by_isolated_leader() {
    let c = Cluster::start(3);
    let client = c.client();
    client.put("k", "before").unwrap();
    let old = c.wait_leader(Duration::from_secs(5));
    let others: Vec<u64> = (1..=3).filter(|i| *i != old).collect();
    // Cut the leader off from both others, on every side.
    c.master(old).partition(&others);
    for o in &others {
        c.master(*o).partition(&[old]);
    }
    let isolated = common::client(
        std::slice::from_ref(&c.members[(old - 1) as usize]),
        Duration::from_secs(3),
    );
    let r = isolated.get("k");
    assert!(
        r.is_err(),
        "isolated leader served a linearizable read: {r:?}"
    );

    let majority: Vec<_> = c.members.iter().filter(|m| m.id != old).cloned().collect();
    let mc = common::client(&majority, Duration::from_secs(10));
    mc.put("k", "after").unwrap();
    assert_eq!(mc.get("k").unwrap().unwrap().value, b"after");
    for i in 1..=3 {
        c.master(i).partition(&[]);
    }
}

#[test]
fn membership_replace_a_master_while_serving() {
    let mut c = Cluster::start(3);
    let client = c.client();
    for i in 0..50 {
        client.put(format!("m/{i}"), "v").unwrap();
    }
    // Master 3 dies for good; master 4 replaces it.
    c.stop(3);
    let new = common::members(1).pop().unwrap();
    let new = podvisor_store::api::Member { id: 4, ..new };
    client.member_add_learner(new.clone()).unwrap();
    let mut all = c.members.clone();
    all.push(new.clone());
    let mut cfg = common::config(c.dir.path(), 4, &all);
    cfg.join = true;
    let m4 = podvisor_store::Master::start(cfg).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while m4.status().revision < 50 {
        assert!(Instant::now() < end, "learner never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    client.member_promote(4).unwrap();
    client.member_remove(3).unwrap();
    client.put("m/after", "v").unwrap();
    let st = client.status().unwrap();
    let ids: Vec<u64> = st.members.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![1, 2, 4]);
    // Writes still commit with one of the remaining old masters down: 4 votes.
    let leader = c.wait_leader(Duration::from_secs(5));
    let other = if leader == 1 { 2 } else { 1 };
    c.stop(other);
    client.put("m/quorum-with-4", "v").unwrap();
    drop(m4);
}

#[test]
fn watch_reports_an_outage_once_and_resumes_after_it() {
    let mut c = Cluster::start(3);
    let client = common::client(&c.members, Duration::from_secs(1));
    let first = client.put("o/a", "1").unwrap().revision;
    let mut w = client
        .watch(WatchRequest {
            range: KeyRange::prefix("o/"),
            start_revision: first + 1,
            ..Default::default()
        })
        .unwrap();
    for id in 1..=3 {
        c.stop(id);
    }
    // Every master is gone: after the client's timeout the watch says so, once, and goes on.
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < end, "the outage was never reported");
        match w.recv_timeout(Duration::from_millis(500)) {
            Err(StoreError::Unavailable(_)) => break,
            Ok(_) => {}
            Err(e) => panic!("the watch ended on {e}"),
        }
    }
    for id in 1..=3 {
        c.restart(id);
    }
    c.wait_leader(Duration::from_secs(20));
    let written = c.client().put("o/b", "2").unwrap().revision;
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < end,
            "the watch did not resume after the outage"
        );
        match w.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(b)) if b.events.iter().any(|e| e.kv.mod_revision == written) => break,
            Ok(_) => {}
            Err(e) => panic!("the watch failed after the outage: {e}"),
        }
    }
}
