//! Planning an apply: what each manifest object does to the stored state.
//!
//! Applying a folder of manifests is idempotent, as `kubectl apply` is: each object is
//! *created* when absent, *configured* when what the operator owns differs from what is
//! stored, and *unchanged* otherwise, in which case nothing is written and no revision moves.
//! Objects that left the folder are *pruned*, but only when asked, and only those an earlier
//! apply created (they carry [`APPLIED_BY_ANNOTATION`]). Every action carries a diff of the
//! stored and the new object, which is what a dry run shows.
//!
//! What the operator owns is the metadata's labels, annotations, finalizers and owners, and
//! the spec, except the fields the control plane sets itself (the node a pod or VM is bound
//! to, a pod's runtime class), which an apply keeps when the manifest leaves them out.
//! Finalizers the control plane added stay; the manifest's are added to them.

use std::collections::BTreeMap;
use std::fmt;

use crate::objects::{Object, Timestamp};

/// The annotation that marks objects an apply created, naming the apply set (by default,
/// `default`); pruning only considers objects of the same set.
pub const APPLIED_BY_ANNOTATION: &str = "podvisor.io/applied-by";

/// What an apply does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Absent; it will be created.
    Created,
    /// Stored, and the operator's part differs; it will be updated.
    Configured,
    /// Stored as the manifest says; nothing is written.
    Unchanged,
    /// Stored by an earlier apply, no longer in the manifests; it will be deleted.
    Pruned,
}

impl fmt::Display for ApplyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Configured => "configured",
            ApplyOutcome::Unchanged => "unchanged",
            ApplyOutcome::Pruned => "pruned",
        })
    }
}

/// One step of an apply.
#[derive(Debug, Clone)]
pub struct ApplyAction {
    /// What happens.
    pub outcome: ApplyOutcome,
    /// The object to write (created, configured) or the stored one (unchanged, pruned).
    pub object: Object,
    /// The stored object's mod revision, which the write compares against; 0 when absent.
    pub expected_revision: u64,
    /// A unified diff of the stored and the new object's YAML; empty when unchanged.
    pub diff: String,
}

impl ApplyAction {
    /// `pod/default/web configured`, as apply reports each object.
    pub fn summary(&self) -> String {
        format!(
            "{} {}",
            self.object.display_name().to_lowercase(),
            self.outcome
        )
    }
}

/// A stored object and the revision at which it was last written.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object.
    pub object: Object,
    /// Its mod revision in the store.
    pub mod_revision: u64,
}

/// Plans an apply of `desired` over `stored` for the apply set `set`.
///
/// `stored` must hold every stored object of the kinds being applied (with prune) or at least
/// those with the same keys as `desired` (without). The plan lists desired objects in the
/// order given, then the pruned ones.
pub fn plan(desired: &[Object], stored: &[Stored], set: &str, prune: bool) -> Vec<ApplyAction> {
    let by_key: BTreeMap<String, &Stored> =
        stored.iter().map(|s| (s.object.store_key(), s)).collect();
    let mut actions = Vec::new();
    for want in desired {
        let mut want = want.clone();
        want.meta_mut()
            .annotations
            .insert(APPLIED_BY_ANNOTATION.into(), set.into());
        match by_key.get(&want.store_key()) {
            None => {
                let diff = diff_yaml("", &want.to_yaml());
                actions.push(ApplyAction {
                    outcome: ApplyOutcome::Created,
                    object: want,
                    expected_revision: 0,
                    diff,
                });
            }
            Some(have) => actions.push(configure(want, have)),
        }
    }
    if prune {
        let keep: std::collections::BTreeSet<String> =
            desired.iter().map(Object::store_key).collect();
        let kinds: std::collections::BTreeSet<_> = desired.iter().map(Object::kind).collect();
        for s in stored {
            let applied_here = s
                .object
                .meta()
                .annotations
                .get(APPLIED_BY_ANNOTATION)
                .map(String::as_str)
                == Some(set);
            if applied_here
                && kinds.contains(&s.object.kind())
                && !keep.contains(&s.object.store_key())
            {
                actions.push(ApplyAction {
                    outcome: ApplyOutcome::Pruned,
                    object: s.object.clone(),
                    expected_revision: s.mod_revision,
                    diff: diff_yaml(&s.object.to_yaml(), ""),
                });
            }
        }
    }
    actions
}

/// Merges the operator's part of `want` into the stored object and says whether it changed.
fn configure(mut want: Object, have: &Stored) -> ApplyAction {
    keep_server_fields(&mut want, &have.object);
    let mut merged = have.object.clone();
    {
        let (m, w) = (merged.meta_mut(), want.meta());
        m.labels = w.labels.clone();
        m.annotations = w.annotations.clone();
        // Finalizers are added by the control plane (the node agent's sandbox finalizer):
        // the manifest's are added to them, never put in their place.
        for f in &w.finalizers {
            if !m.finalizers.contains(f) {
                m.finalizers.push(f.clone());
            }
        }
        m.owner_references = w.owner_references.clone();
    }
    let spec_changed = spec_json(&want) != spec_json(&merged);
    set_spec(&mut merged, &want);
    if spec_changed {
        merged.meta_mut().generation += 1;
    }
    let before = have.object.to_yaml();
    let after = merged.to_yaml();
    let outcome = if before == after {
        ApplyOutcome::Unchanged
    } else {
        ApplyOutcome::Configured
    };
    let diff = if outcome == ApplyOutcome::Unchanged {
        String::new()
    } else {
        diff_yaml(&before, &after)
    };
    ApplyAction {
        outcome,
        object: merged,
        expected_revision: have.mod_revision,
        diff,
    }
}

/// Keeps the spec fields the control plane sets when the manifest leaves them empty.
fn keep_server_fields(want: &mut Object, have: &Object) {
    match (want, have) {
        (Object::Pod(w), Object::Pod(h)) => {
            if w.spec.node_name.is_empty() {
                w.spec.node_name = h.spec.node_name.clone();
            }
            if w.spec.runtime_class_name.is_none() {
                w.spec.runtime_class_name = h.spec.runtime_class_name;
            }
        }
        (Object::VirtualMachine(w), Object::VirtualMachine(h)) if w.spec.node_name.is_empty() => {
            w.spec.node_name = h.spec.node_name.clone();
        }
        _ => {}
    }
}

/// An object's spec as JSON, to tell whether it changed (and its generation must move).
pub(crate) fn spec_json(obj: &Object) -> serde_json::Value {
    obj.to_json_value().get("spec").cloned().unwrap_or_default()
}

fn set_spec(into: &mut Object, from: &Object) {
    match (into, from) {
        (Object::Node(i), Object::Node(f)) => i.spec = f.spec.clone(),
        (Object::IPPool(i), Object::IPPool(f)) => i.spec = f.spec.clone(),
        (Object::Service(i), Object::Service(f)) => i.spec = f.spec.clone(),
        (Object::Pod(i), Object::Pod(f)) => i.spec = f.spec.clone(),
        (Object::VirtualMachine(i), Object::VirtualMachine(f)) => i.spec = f.spec.clone(),
        // Objects with the same store key have the same kind.
        _ => {}
    }
}

/// Fills in what the control plane owns on a new object: uid, generation 1 and the creation
/// time.
pub fn stamp_new(obj: &mut Object, uid: String) {
    let m = obj.meta_mut();
    m.uid = uid;
    m.generation = 1;
    m.creation_timestamp = Some(Timestamp::now());
    m.resource_version.clear();
}

/// A unified diff of two YAML texts, three lines of context, as `kubectl diff` shows.
pub fn diff_yaml(before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header("stored", "applied")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::parse_manifests;

    const PODS: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec:\n  containers: [{name: c, image: /rootfs}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: job}\nspec:\n  restartPolicy: Never\n  containers: [{name: c, image: /rootfs}]\n";

    fn store_all(actions: &[ApplyAction]) -> Vec<Stored> {
        actions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.outcome != ApplyOutcome::Pruned)
            .map(|(i, a)| {
                let mut object = a.object.clone();
                if a.outcome == ApplyOutcome::Created {
                    stamp_new(&mut object, format!("uid-{i}"));
                }
                Stored {
                    object,
                    mod_revision: 10 + i as u64,
                }
            })
            .collect()
    }

    #[test]
    fn test_second_apply_of_same_manifests_changes_nothing() {
        let desired = parse_manifests(PODS, "pods.yaml").expect("valid");
        let first = plan(&desired, &[], "default", false);
        assert!(first.iter().all(|a| a.outcome == ApplyOutcome::Created));
        let mut stored = store_all(&first);
        // The scheduler binds one pod meanwhile; apply keeps that.
        if let Object::Pod(p) = &mut stored[0].object {
            p.spec.node_name = "node-a".into();
        }
        let second = plan(&desired, &stored, "default", true);
        let outcomes: Vec<_> = second.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [ApplyOutcome::Unchanged, ApplyOutcome::Unchanged]);
        assert!(second.iter().all(|a| a.diff.is_empty()));
    }

    #[test]
    fn test_changed_spec_is_configured_with_diff_and_new_generation() {
        let desired = parse_manifests(PODS, "pods.yaml").expect("valid");
        let stored = store_all(&plan(&desired, &[], "default", false));
        let changed = parse_manifests(
            &PODS.replace("restartPolicy: Never", "restartPolicy: OnFailure"),
            "x",
        )
        .expect("valid");
        let actions = plan(&changed, &stored, "default", false);
        assert_eq!(actions[0].outcome, ApplyOutcome::Unchanged);
        assert_eq!(actions[1].outcome, ApplyOutcome::Configured);
        assert_eq!(actions[1].object.meta().generation, 2);
        assert_eq!(actions[1].expected_revision, 11);
        assert!(
            actions[1].diff.contains("-  restartPolicy: Never"),
            "{}",
            actions[1].diff
        );
        assert!(
            actions[1].diff.contains("+  restartPolicy: OnFailure"),
            "{}",
            actions[1].diff
        );
    }

    #[test]
    fn test_prune_removes_only_objects_this_apply_set_created() {
        let desired = parse_manifests(PODS, "pods.yaml").expect("valid");
        let mut stored = store_all(&plan(&desired, &[], "default", false));
        let mut foreign = stored[1].clone();
        foreign.object.meta_mut().name = "made-by-hand".into();
        foreign.object.meta_mut().annotations.clear();
        stored.push(foreign);
        let only_web = vec![desired[0].clone()];
        let without_prune = plan(&only_web, &stored, "default", false);
        assert_eq!(without_prune.len(), 1);
        let with_prune = plan(&only_web, &stored, "default", true);
        let summary: Vec<_> = with_prune.iter().map(ApplyAction::summary).collect();
        assert_eq!(
            summary,
            ["pod/default/web unchanged", "pod/default/job pruned"]
        );
    }
}
