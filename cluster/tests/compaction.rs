//! The controller leader compacts the store's history on its interval, keeping one interval
//! of it, against a real three-master store.

mod common;

use std::time::Duration;

use common::{ControlPlane, object, wait_for};
use podvisor_cluster::controllers::ControllerConfig;
use podvisor_cluster::objects::Kind;
use podvisor_cluster::registry::{ObjectEvent, RegistryError};
use podvisor_store::member_status;

const POOL: &str = "
apiVersion: podvisor.io/v1alpha1
kind: IPPool
metadata:
  name: churn
spec:
  purpose: Workload
  cidrs: [10.99.0.0/24]
  gateway: 10.99.0.1
";

#[test]
fn history_is_compacted_up_to_one_interval_ago() {
    let interval = Duration::from_millis(700);
    let plane = ControlPlane::start(
        "compaction",
        ControllerConfig {
            compaction_interval: interval,
            ..ControllerConfig::default()
        },
    );
    let registry = plane.registry();
    // Some history: the pool is created, deleted and created again.
    for _ in 0..2 {
        registry
            .apply(&[object(POOL)], "test", false, false)
            .expect("apply");
        registry.delete(Kind::IPPool, "", "churn").expect("delete");
    }
    registry
        .apply(&[object(POOL)], "test", false, false)
        .expect("apply");
    let (_, written) = registry.list(Kind::IPPool, None).expect("list");
    let first = 1;

    // The leader marks a revision at or after `written` on some tick, and compacts to it one
    // interval later; every member applies the compaction.
    let compacted = wait_for(
        "a compaction past the write",
        Duration::from_secs(20),
        || {
            plane
                .members
                .iter()
                .map(|m| member_status(&m.client_addr, Duration::from_secs(2)).ok())
                .map(|st| st.map(|st| st.compact_revision))
                .collect::<Option<Vec<u64>>>()
                .and_then(|revs| revs.into_iter().min())
                .filter(|min| *min >= written)
        },
    );

    // History below the compaction point is gone: a watch from there says so clearly.
    // (The watch's first message only confirms where it starts.)
    let mut old = registry
        .watch(Kind::IPPool, None, first)
        .expect("watch starts");
    wait_for("the compacted error", Duration::from_secs(5), || match old
        .next_timeout(Duration::from_secs(1))
    {
        Err(RegistryError::Store(podvisor_store::StoreError::Compacted { .. })) => Some(()),
        Ok(None | Some(ObjectEvent::Progress(_))) => None,
        other => panic!("a watch from {first}, below {compacted}, gave {other:?}"),
    });

    // What happened within the last interval can still be watched from: a change made now is
    // delivered to a watch started at the present revision, even across the next compaction.
    let (_, now) = registry.list(Kind::IPPool, None).expect("list");
    let mut recent = registry
        .watch(Kind::IPPool, None, now)
        .expect("watch starts");
    registry
        .delete(Kind::IPPool, "", "churn")
        .expect("delete the pool");
    wait_for(
        "the delete on the recent watch",
        Duration::from_secs(10),
        || match recent.next_timeout(Duration::from_millis(500)) {
            Ok(Some(ObjectEvent::Deleted { key, .. })) => Some(key),
            Ok(_) => None,
            Err(e) => panic!("the recent watch failed: {e}"),
        },
    );
}
