//! Compaction of the store's history, as kube-apiserver compacts etcd.
//!
//! The store keeps every revision of every key until it is told to compact. Nothing in the
//! control plane needs old revisions for long: watches resume from a recent revision and
//! reconcile passes read the present. So the controller leader compacts on a fixed interval,
//! each time up to the revision it saw one interval earlier: whatever was read or listed
//! within the last interval can still be watched from.

use std::time::{Duration, Instant};

use podvisor_store::api::{KeyRange, RangeRequest};
use podvisor_store::{Client, StoreError};

use super::LEADER_KEY;

/// Remembers the revision seen at the last interval tick.
#[derive(Debug)]
pub struct Compactor {
    interval: Duration,
    mark: Option<(Instant, u64)>,
}

impl Compactor {
    /// A compactor that compacts every `interval`; zero turns compaction off.
    pub fn new(interval: Duration) -> Self {
        Compactor {
            interval,
            mark: None,
        }
    }

    /// Compacts when an interval has passed since the last mark, up to that mark's revision,
    /// and marks the present. Returns the revision compacted to, if it compacted.
    ///
    /// # Errors
    /// The store could not be read or refused the compaction (other than for having been
    /// compacted past the mark already, which is not an error).
    pub fn tick(&mut self, client: &Client) -> Result<Option<u64>, StoreError> {
        if self.interval.is_zero() {
            return Ok(None);
        }
        let due = self
            .mark
            .is_none_or(|(at, _)| at.elapsed() >= self.interval);
        if !due {
            return Ok(None);
        }
        let now = client
            .range(RangeRequest {
                range: KeyRange::key(LEADER_KEY.as_bytes()),
                count_only: true,
                ..RangeRequest::default()
            })?
            .revision;
        let previous = self.mark.replace((Instant::now(), now));
        let Some((_, revision)) = previous else {
            return Ok(None);
        };
        match client.compact(revision) {
            Ok(()) => {
                tracing::info!(revision, "compacted the store's history");
                Ok(Some(revision))
            }
            Err(StoreError::Compacted { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets the mark, as a new leader must: it has not seen the revisions in between.
    pub fn reset(&mut self) {
        self.mark = None;
    }
}
