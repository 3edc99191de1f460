//! Apply against a real three-master store: idempotence, conflicts and finalizers.

mod common;

use std::path::Path;

use common::{ControlPlane, object};
use podvisor_cluster::apply::ApplyOutcome;
use podvisor_cluster::objects::{Kind, Object, read_manifest_path};
use podvisor_cluster::registry::{Deleted, RegistryError};
use podvisor_store::api::{KeyRange, RangeRequest};

fn store_revision(plane: &ControlPlane) -> u64 {
    plane
        .client()
        .range(RangeRequest {
            range: KeyRange::key(b"/".to_vec()),
            ..RangeRequest::default()
        })
        .expect("read")
        .revision
}

#[test]
fn applying_a_folder_twice_writes_nothing_the_second_time() {
    let plane = ControlPlane::store_only("apply-twice");
    let registry = plane.registry();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests");
    let objects = read_manifest_path(&dir).expect("example manifests");

    let first = registry
        .apply(&objects, "default", false, false)
        .expect("first apply");
    assert!(
        first.iter().all(|a| a.outcome == ApplyOutcome::Created),
        "{first:?}"
    );
    let before = store_revision(&plane);

    let second = registry
        .apply(&objects, "default", true, false)
        .expect("second apply");
    let outcomes: Vec<_> = second.iter().map(|a| a.outcome).collect();
    assert!(
        outcomes.iter().all(|o| *o == ApplyOutcome::Unchanged),
        "{outcomes:?}"
    );
    assert_eq!(
        store_revision(&plane),
        before,
        "a second apply must not move the revision"
    );

    // A changed file is configured, and a dry run shows the diff without writing.
    let mut changed = objects.clone();
    changed[2]
        .meta_mut()
        .labels
        .insert("tier".into(), "front".into());
    let dry = registry
        .apply(&changed, "default", false, true)
        .expect("dry run");
    let configured: Vec<_> = dry
        .iter()
        .filter(|a| a.outcome == ApplyOutcome::Configured)
        .collect();
    assert_eq!(configured.len(), 1);
    assert!(
        configured[0].diff.contains("+    tier: front"),
        "{}",
        configured[0].diff
    );
    assert_eq!(store_revision(&plane), before, "a dry run writes nothing");
}

#[test]
fn prune_removes_objects_that_left_the_folder_only_when_asked() {
    let plane = ControlPlane::store_only("apply-prune");
    let registry = plane.registry();
    let a = object(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selector: {app: a}, ports: [{port: 80}]}\n",
    );
    let b = object(
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {selector: {app: b}, ports: [{port: 80}]}\n",
    );
    registry
        .apply(&[a.clone(), b], "default", false, false)
        .expect("apply both");
    let kept = registry
        .apply(std::slice::from_ref(&a), "default", false, false)
        .expect("apply a");
    assert_eq!(kept.len(), 1);
    assert!(
        registry.get(Kind::Service, "default", "b").is_ok(),
        "b stays without --prune"
    );
    let pruned = registry
        .apply(&[a], "default", true, false)
        .expect("apply a with prune");
    assert_eq!(pruned[1].summary(), "service/default/b pruned");
    assert!(matches!(
        registry.get(Kind::Service, "default", "b"),
        Err(RegistryError::NotFound { .. })
    ));
}

#[test]
fn conflicting_update_is_refused_with_a_conflict_error() {
    let plane = ControlPlane::store_only("apply-conflict");
    let registry = plane.registry();
    let svc = object(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n",
    );
    let stored = registry.create(svc).expect("create");

    let mut first = stored.clone();
    first
        .meta_mut()
        .labels
        .insert("writer".into(), "one".into());
    registry.update(first).expect("first writer wins");

    let mut second = stored;
    second
        .meta_mut()
        .labels
        .insert("writer".into(), "two".into());
    let err = registry.update(second).expect_err("stale writer refused");
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("conflict"), "{err}");
    let now = registry.get(Kind::Service, "default", "web").expect("read");
    assert_eq!(
        now.meta().labels.get("writer").map(String::as_str),
        Some("one")
    );
}

#[test]
fn invalid_object_is_refused_and_nothing_is_stored() {
    let plane = ControlPlane::store_only("apply-invalid");
    let registry = plane.registry();
    let mut svc = object(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n",
    );
    if let Object::Service(s) = &mut svc {
        s.spec.ports[0].port = 0;
    }
    let err = registry.create(svc).expect_err("port 0 refused");
    assert!(err.to_string().contains("spec.ports[0].port"), "{err}");
    assert!(matches!(
        registry.get(Kind::Service, "default", "web"),
        Err(RegistryError::NotFound { .. })
    ));
}

#[test]
fn delete_with_finalizers_waits_until_they_are_cleared() {
    let plane = ControlPlane::store_only("apply-finalizers");
    let registry = plane.registry();
    let svc = object(
        "apiVersion: v1\nkind: Service\nmetadata: {name: held, finalizers: [example.com/hold]}\nspec: {selector: {app: x}, ports: [{port: 80}]}\n",
    );
    registry.create(svc).expect("create");

    let deleted = registry
        .delete(Kind::Service, "default", "held")
        .expect("delete");
    assert!(matches!(deleted, Deleted::Pending(_)), "{deleted:?}");
    let still = registry
        .get(Kind::Service, "default", "held")
        .expect("still there");
    assert!(still.meta().deletion_timestamp.is_some());

    registry
        .modify(Kind::Service, "default", "held", |o| {
            o.meta_mut().finalizers.clear();
            true
        })
        .expect("clear finalizers");
    assert!(matches!(
        registry.get(Kind::Service, "default", "held"),
        Err(RegistryError::NotFound { .. })
    ));
}

#[test]
fn a_watch_by_kind_and_namespace_resumes_from_a_resource_version() {
    use podvisor_cluster::registry::ObjectEvent;
    use std::time::Duration;

    let plane = ControlPlane::store_only("apply-watch");
    let registry = plane.registry();
    let svc = |ns: &str, name: &str| {
        object(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{selector: {{app: x}}, ports: [{{port: 80}}]}}\n"
        ))
    };
    let first = registry.create(svc("team-a", "one")).expect("create one");
    let from: u64 = first
        .meta()
        .resource_version
        .parse()
        .expect("numeric resourceVersion");
    registry
        .create(svc("team-b", "other"))
        .expect("create other namespace");
    registry.create(svc("team-a", "two")).expect("create two");
    registry
        .delete(Kind::Service, "team-a", "one")
        .expect("delete one");

    // Resuming after `one` was created sees exactly what followed in team-a, in order.
    let mut watch = registry
        .watch(Kind::Service, Some("team-a"), from)
        .expect("watch");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match watch
            .next_timeout(Duration::from_secs(10))
            .expect("watch event")
        {
            Some(ObjectEvent::Put(obj)) => seen.push(format!("put {}", obj.meta().name)),
            Some(ObjectEvent::Deleted { key, .. }) => seen.push(format!("delete {key}")),
            Some(ObjectEvent::Progress(_)) => {}
            None => panic!("no event within 10 s; saw {seen:?}"),
        }
    }
    assert_eq!(seen, ["put two", "delete /registry/services/team-a/one"]);
}
