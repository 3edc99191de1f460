//! Watching objects: store watch events on a kind's key prefix, decoded into objects.

use podvisor_store::Client;
use podvisor_store::api::{EventKind, KeyRange, WatchRequest};

use super::{Result, decode};
use crate::objects::{Kind, Object};

/// One change to one object.
#[derive(Debug, Clone)]
pub enum ObjectEvent {
    /// Created or updated; the object as written, with its new resourceVersion.
    Put(Box<Object>),
    /// Deleted; the store key and the revision of the delete.
    Deleted {
        /// The object's store key.
        key: String,
        /// The revision of the delete.
        revision: u64,
    },
    /// Everything up to this revision has been delivered.
    Progress(u64),
}

/// A stream of object events, in revision order.
pub struct ObjectWatch {
    inner: podvisor_store::Watcher,
    pending: std::collections::VecDeque<ObjectEvent>,
}

impl ObjectWatch {
    pub(super) fn start(
        client: &Client,
        kind: Kind,
        namespace: Option<&str>,
        after: u64,
    ) -> Result<Self> {
        let inner = client.watch(WatchRequest {
            range: KeyRange::prefix(kind.key_prefix(namespace).into_bytes()),
            start_revision: if after == 0 { 0 } else { after + 1 },
            prev_kv: false,
            progress_notify: true,
        })?;
        Ok(ObjectWatch {
            inner,
            pending: Default::default(),
        })
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` when none came in time.
    ///
    /// # Errors
    /// The watch failed (for example, its start revision was compacted) or a stored value
    /// does not decode.
    pub fn next_timeout(&mut self, timeout: std::time::Duration) -> Result<Option<ObjectEvent>> {
        if let Some(ev) = self.pending.pop_front() {
            return Ok(Some(ev));
        }
        let Some(batch) = self.inner.recv_timeout(timeout)? else {
            return Ok(None);
        };
        if batch.is_progress() {
            return Ok(Some(ObjectEvent::Progress(batch.revision)));
        }
        for ev in batch.events {
            let kv = ev.kv;
            let event = match ev.kind {
                EventKind::Put => {
                    ObjectEvent::Put(Box::new(decode(&kv.key, &kv.value, kv.mod_revision)?))
                }
                EventKind::Delete => ObjectEvent::Deleted {
                    key: String::from_utf8_lossy(&kv.key).into_owned(),
                    revision: kv.mod_revision,
                },
            };
            self.pending.push_back(event);
        }
        Ok(self.pending.pop_front())
    }
}
