//! Snapshots and log compaction: a master that fell behind the compacted log catches up by
//! the leader's snapshot, keeps its data across restarts, and a watch it serves never goes
//! back in revision.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use podvisor_store::api::{KeyRange, RangeRequest, WatchRequest};

fn small_snapshots(cfg: &mut podvisor_store::MasterConfig) {
    cfg.snapshot_entries = 50;
    cfg.snapshot_trail = 10;
}

#[test]
fn lagging_master_catches_up_by_snapshot_and_its_watch_never_goes_back() {
    let mut c = Cluster::start_with(3, small_snapshots);
    let client = c.client();
    let first = client.put("s/0000", "v").unwrap().revision;

    // A watch served by master 3 only.
    let only3 = common::client(std::slice::from_ref(&c.members[2]), Duration::from_secs(10));
    let mut watch = only3
        .watch(WatchRequest {
            range: KeyRange::prefix("s/"),
            start_revision: first,
            progress_notify: true,
            ..Default::default()
        })
        .unwrap();

    for i in 1..20 {
        client.put(format!("s/{i:04}"), "v").unwrap();
    }
    // Master 3 leaves; the others write far past their compacted log, then it comes back.
    let leader = c.wait_leader(Duration::from_secs(5));
    if leader == 3 {
        c.restart(3);
        c.wait_leader(Duration::from_secs(10));
    }
    c.stop(3);
    for i in 20..400 {
        client.put(format!("s/{i:04}"), "v").unwrap();
    }
    let last = client.status().unwrap().revision;
    c.restart(3);

    let end = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut last_batch = 0;
    while seen.len() < 400 {
        assert!(
            Instant::now() < end,
            "watch on the lagging master stalled at {} events",
            seen.len()
        );
        if let Some(b) = watch.recv_timeout(Duration::from_millis(500)).unwrap() {
            assert!(
                b.revision >= last_batch,
                "watch went back from {last_batch} to {}",
                b.revision
            );
            last_batch = b.revision;
            for e in b.events {
                assert!(
                    seen.last().is_none_or(|r| *r < e.kv.mod_revision),
                    "duplicate or reordered event"
                );
                seen.push(e.kv.mod_revision);
            }
        }
    }
    assert_eq!(seen.len(), 400);
    assert_eq!(*seen.last().unwrap(), last);

    // The caught-up master serves the same data, and keeps it across a restart.
    let st = c.master(3).status();
    assert!(
        st.snapshot_index > 100,
        "master 3 has no recent snapshot: {st:?}"
    );
    c.restart(3);
    let end = Instant::now() + Duration::from_secs(10);
    while c.master(3).status().revision < last {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = only3
        .range(RangeRequest {
            range: KeyRange::prefix("s/"),
            serializable: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 400);
}
