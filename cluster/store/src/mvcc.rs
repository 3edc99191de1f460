//! The multi-version key-value state: latest pairs, revisions, and the event history that
//! watches read.
//!
//! Every write that changes something gets the next cluster revision; a transaction or a
//! delete-range that touches several keys shares one revision. The latest pair of each key is
//! kept in a B-tree for range reads, and every revision's events are kept, in order, from the
//! compaction point on. Compaction drops the events below its revision, so a watch can start
//! at any revision at or above it and receive every later event, deletes included.
//!
//! This type is pure and deterministic: applied to the same writes in the same order, every
//! master ends with the same bytes, which is what the replicated state machine needs.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::api::{
    Compare, CompareOp, CompareTarget, DeleteRequest, DeleteResponse, Event, EventKind, KeyRange,
    KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse,
};
use crate::error::{Result, StoreError};

/// The events of one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionEvents {
    /// The revision.
    pub revision: u64,
    /// Its events, in the order the writes happened.
    pub events: Vec<Event>,
}

/// The MVCC key space.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mvcc {
    latest: BTreeMap<Vec<u8>, KeyValue>,
    revision: u64,
    compact_revision: u64,
    history: VecDeque<RevisionEvents>,
}

/// A write in progress: collects the events of one revision.
pub struct WriteTxn<'a> {
    mvcc: &'a mut Mvcc,
    revision: u64,
    events: Vec<Event>,
}

impl Mvcc {
    /// The current revision (0 before the first write).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The compaction revision: watches may start at or above it.
    pub fn compact_revision(&self) -> u64 {
        self.compact_revision
    }

    /// Reads a range of the latest pairs.
    pub fn range(&self, req: &RangeRequest) -> RangeResponse {
        let mut resp = RangeResponse {
            revision: self.revision,
            ..Default::default()
        };
        for kv in self.iter_range(&req.range) {
            resp.count += 1;
            if req.count_only {
                continue;
            }
            if req.limit > 0 && resp.kvs.len() >= req.limit {
                resp.more = true;
                continue;
            }
            resp.kvs.push(kv.clone());
        }
        resp
    }

    /// The latest pair of `key`, if it exists.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.latest.get(key)
    }

    fn iter_range<'a>(&'a self, range: &KeyRange) -> Box<dyn Iterator<Item = &'a KeyValue> + 'a> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        if range.range_end.is_empty() {
            return Box::new(self.latest.get(&range.key).into_iter());
        }
        let end = if range.range_end == [0] {
            Unbounded
        } else if range.range_end <= range.key {
            return Box::new(std::iter::empty());
        } else {
            Excluded(range.range_end.clone())
        };
        Box::new(
            self.latest
                .range((Included(range.key.clone()), end))
                .map(|(_, kv)| kv),
        )
    }

    /// Whether a compare holds against the latest state.
    pub fn compare(&self, cmp: &Compare) -> bool {
        let kv = self.latest.get(&cmp.key);
        let ord = match (&cmp.target, kv) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (CompareTarget::Version(v), kv) => kv.map_or(0, |kv| kv.version).cmp(v),
            (CompareTarget::CreateRevision(r), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(r),
            (CompareTarget::ModRevision(r), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(r),
            (CompareTarget::Lease(l), kv) => kv.map_or(0, |kv| kv.lease).cmp(l),
        };
        match cmp.op {
            CompareOp::Equal => ord.is_eq(),
            CompareOp::NotEqual => ord.is_ne(),
            CompareOp::Greater => ord.is_gt(),
            CompareOp::Less => ord.is_lt(),
        }
    }

    /// Starts a write; its changes share one revision, assigned if anything changes.
    pub fn write(&mut self) -> WriteTxn<'_> {
        let revision = self.revision + 1;
        WriteTxn {
            mvcc: self,
            revision,
            events: Vec::new(),
        }
    }

    /// Drops the history below `revision`.
    ///
    /// # Errors
    /// [`StoreError::Compacted`] if `revision` is at or below the current compaction point,
    /// [`StoreError::FutureRevision`] if it is above the current revision.
    pub fn compact(&mut self, revision: u64) -> Result<()> {
        if revision <= self.compact_revision {
            return Err(StoreError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                revision,
                current: self.revision,
            });
        }
        self.compact_revision = revision;
        while self.history.front().is_some_and(|r| r.revision < revision) {
            self.history.pop_front();
        }
        Ok(())
    }

    /// Events of revisions `from..` matching `range`, stopping after `max_revisions` revisions
    /// that matched; returns them grouped by revision, and the last revision examined.
    ///
    /// # Errors
    /// [`StoreError::Compacted`] if `from` is below the compaction point.
    pub fn events_since(
        &self,
        from: u64,
        range: &KeyRange,
        prev_kv: bool,
        max_events: usize,
    ) -> Result<(Vec<Event>, u64)> {
        if from < self.compact_revision {
            return Err(StoreError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        let mut out = Vec::new();
        let mut last = from.saturating_sub(1);
        let start = match self.history.front() {
            Some(first) if from > first.revision => (from - first.revision) as usize,
            _ => 0,
        };
        for rev in self.history.iter().skip(start) {
            if rev.revision < from {
                continue;
            }
            if out.len() >= max_events {
                break;
            }
            for ev in &rev.events {
                if range.contains(&ev.kv.key) {
                    let mut ev = ev.clone();
                    if !prev_kv {
                        ev.prev_kv = None;
                    }
                    out.push(ev);
                }
            }
            last = rev.revision;
        }
        if out.len() < max_events {
            last = last.max(self.revision);
        }
        Ok((out, last))
    }
}

impl WriteTxn<'_> {
    /// The revision this write gets if it changes anything.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Reads through the write's own view.
    pub fn range(&self, req: &RangeRequest) -> RangeResponse {
        let mut resp = self.mvcc.range(req);
        resp.revision = self.current_revision();
        resp
    }

    /// The latest pair of `key` as this write sees it.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.mvcc.latest.get(key)
    }

    fn current_revision(&self) -> u64 {
        if self.events.is_empty() {
            self.mvcc.revision
        } else {
            self.revision
        }
    }

    /// Writes one key.
    pub fn put(&mut self, req: &PutRequest) -> PutResponse {
        let prev = self.mvcc.latest.get(&req.key).cloned();
        let kv = KeyValue {
            key: req.key.clone(),
            value: req.value.clone(),
            create_revision: prev.as_ref().map_or(self.revision, |p| p.create_revision),
            mod_revision: self.revision,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease: req.lease,
        };
        self.mvcc.latest.insert(req.key.clone(), kv.clone());
        self.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        PutResponse {
            revision: self.revision,
            prev_kv: if req.prev_kv { prev } else { None },
        }
    }

    /// Deletes a range of keys.
    pub fn delete(&mut self, req: &DeleteRequest) -> DeleteResponse {
        let keys: Vec<Vec<u8>> = self
            .mvcc
            .iter_range(&req.range)
            .map(|kv| kv.key.clone())
            .collect();
        let mut resp = DeleteResponse::default();
        for key in keys {
            let Some(prev) = self.mvcc.latest.remove(&key) else {
                continue;
            };
            let kv = KeyValue {
                key,
                mod_revision: self.revision,
                ..Default::default()
            };
            self.events.push(Event {
                kind: EventKind::Delete,
                kv,
                prev_kv: Some(prev.clone()),
            });
            resp.deleted += 1;
            if req.prev_kv {
                resp.prev_kvs.push(prev);
            }
        }
        resp.revision = self.current_revision();
        resp
    }

    /// Ends the write; returns the store revision after it.
    pub fn commit(self) -> u64 {
        if self.events.is_empty() {
            return self.mvcc.revision;
        }
        self.mvcc.revision = self.revision;
        self.mvcc.history.push_back(RevisionEvents {
            revision: self.revision,
            events: self.events,
        });
        self.revision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(m: &mut Mvcc, k: &str, v: &str) -> u64 {
        let mut w = m.write();
        w.put(&PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        });
        w.commit()
    }

    #[test]
    fn test_put_assigns_revisions_and_versions() {
        let mut m = Mvcc::default();
        assert_eq!(put(&mut m, "a", "1"), 1);
        assert_eq!(put(&mut m, "a", "2"), 2);
        let kv = m.get(b"a").unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (1, 2, 2));
    }

    #[test]
    fn test_range_by_prefix_and_interval() {
        let mut m = Mvcc::default();
        for k in ["a/1", "a/2", "b/1", "a0"] {
            put(&mut m, k, "x");
        }
        let r = m.range(&RangeRequest {
            range: KeyRange::prefix("a/"),
            ..Default::default()
        });
        assert_eq!(r.kvs.len(), 2);
        let r = m.range(&RangeRequest {
            range: KeyRange::interval("a/2", "b/2"),
            ..Default::default()
        });
        let keys: Vec<_> = r.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(keys, vec![b"a/2".to_vec(), b"a0".to_vec(), b"b/1".to_vec()]);
        let r = m.range(&RangeRequest {
            range: KeyRange::prefix(""),
            limit: 1,
            ..Default::default()
        });
        assert_eq!((r.kvs.len(), r.count, r.more), (1, 4, true));
    }

    #[test]
    fn test_delete_range_shares_one_revision() {
        let mut m = Mvcc::default();
        put(&mut m, "a/1", "x");
        put(&mut m, "a/2", "x");
        let mut w = m.write();
        let d = w.delete(&DeleteRequest {
            range: KeyRange::prefix("a/"),
            prev_kv: true,
        });
        assert_eq!(w.commit(), 3);
        assert_eq!((d.deleted, d.prev_kvs.len()), (2, 2));
        let (evs, last) = m
            .events_since(3, &KeyRange::prefix(""), false, 100)
            .unwrap();
        assert_eq!((evs.len(), last), (2, 3));
        assert!(
            evs.iter()
                .all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == 3)
        );
    }

    #[test]
    fn test_delete_of_missing_key_does_not_bump_revision() {
        let mut m = Mvcc::default();
        let mut w = m.write();
        w.delete(&DeleteRequest {
            range: KeyRange::key("nope"),
            prev_kv: false,
        });
        assert_eq!(w.commit(), 0);
    }

    #[test]
    fn test_compact_drops_history_below_revision_only() {
        let mut m = Mvcc::default();
        for i in 0..10 {
            put(&mut m, "k", &i.to_string());
        }
        m.compact(5).unwrap();
        assert!(matches!(
            m.events_since(4, &KeyRange::key("k"), false, 100),
            Err(StoreError::Compacted {
                compact_revision: 5
            })
        ));
        let (evs, _) = m.events_since(5, &KeyRange::key("k"), false, 100).unwrap();
        assert_eq!(evs.len(), 6);
        assert!(matches!(m.compact(5), Err(StoreError::Compacted { .. })));
        assert!(matches!(
            m.compact(11),
            Err(StoreError::FutureRevision { .. })
        ));
    }

    #[test]
    fn test_compare_on_missing_key() {
        let m = Mvcc::default();
        assert!(m.compare(&Compare::version_equals("k", 0)));
        assert!(!m.compare(&Compare::value_equals("k", "")));
    }
}
