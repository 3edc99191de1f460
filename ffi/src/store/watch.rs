//! Watches: the changes to a key range, delivered in revision order either to a callback, on a
//! library thread with an alternate signal stack, or to a host that polls.
//!
//! A batch of changes is a `podvisor_watch_batch` handle. A polling host owns each batch it
//! gets and frees it; a callback borrows the batch for the duration of the call.

use std::ffi::{CString, c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use podvisor_store::Watcher;
use podvisor_store::api::{EventKind, WatchRequest, WatchResponse};

use super::client::{arg_range, podvisor_client};
use super::store_error;
use crate::boundary::{OptOut, Out, arg_timeout_ms, call};
use crate::error::{FfiError, podvisor_error_code};
use crate::handle::{self, Opaque};
use crate::options::{self, Options, ResultOut};
use podvisor_error_code::*;

/// A watch on a key range. Created by `podvisor_client_watch`, freed by `podvisor_watch_free`.
pub struct podvisor_watch {
    _private: [u8; 0],
}

/// One batch of changes: every matching change of each revision it covers, in order.
pub struct podvisor_watch_batch {
    _private: [u8; 0],
}

enum Delivery {
    Poll(Mutex<Watcher>),
    Callback {
        stop: Arc<AtomicBool>,
        thread: Mutex<Option<JoinHandle<()>>>,
        thread_id: ThreadId,
    },
}

/// What a `podvisor_watch` holds.
pub(crate) struct WatchObject {
    delivery: Delivery,
}

impl Opaque for podvisor_watch {
    type Object = WatchObject;
    const NAME: &'static str = "podvisor_watch";
}

impl Opaque for podvisor_watch_batch {
    type Object = WatchResponse;
    const NAME: &'static str = "podvisor_watch_batch";
}

/// Receives watch batches on the watch's own library thread, which has an alternate signal
/// stack. Calls for one watch never overlap.
///
/// - `batch`: the batch, borrowed for the duration of the call (do not free it), or NULL when
///   the watch ended with an error.
/// - `status`: `PODVISOR_OK` with a batch; otherwise why the watch ended (for example
///   `PODVISOR_ECOMPACTED`), and this is the last call.
/// - `message`: NULL with a batch; otherwise the error's message, borrowed for the call.
/// - `userdata`: as given to `podvisor_client_watch`.
///
/// The callback must not unwind. It may call libpodvisor, including `podvisor_watch_free` on
/// its own watch (which then returns without waiting).
pub type podvisor_watch_callback = Option<
    unsafe extern "C" fn(
        batch: *const podvisor_watch_batch,
        status: podvisor_error_code,
        message: *const c_char,
        userdata: *mut c_void,
    ),
>;

/// Put or delete.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_event_kind {
    /// The key was written.
    PODVISOR_EVENT_PUT = 0,
    /// The key was deleted.
    PODVISOR_EVENT_DELETE = 1,
}

/// One change to one key, filled by `podvisor_watch_batch_event`. Initialise with
/// `podvisor_watch_event_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_watch_event {
    /// `sizeof(podvisor_watch_event)`, set by `podvisor_watch_event_init`.
    pub struct_size: usize,
    /// Put or delete.
    pub kind: podvisor_event_kind,
    /// The key; borrowed from the batch, valid until the batch is freed (or the callback
    /// returns).
    pub key: *const u8,
    /// The key's length.
    pub key_len: usize,
    /// The value after the change (empty for a delete); borrowed like `key`.
    pub value: *const u8,
    /// The value's length.
    pub value_len: usize,
    /// The revision of the write that created the key.
    pub create_revision: u64,
    /// The revision of this change.
    pub mod_revision: u64,
    /// The number of writes since the key was created.
    pub version: u64,
    /// The lease the key is attached to, 0 for none.
    pub lease: u64,
    /// Whether the key existed before this change; then `prev_value` holds its value.
    pub has_prev_kv: bool,
    /// The value before the change; borrowed like `key`.
    pub prev_value: *const u8,
    /// The previous value's length.
    pub prev_value_len: usize,
}

// SAFETY: repr(C), starts with `struct_size: usize`. A result struct: not `Input`, so nothing
// but `struct_size` is ever read of the host's, whose enum and bool fields may hold any bytes.
unsafe impl Options for podvisor_watch_event {
    const NAME: &'static str = "podvisor_watch_event";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_watch_event>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            kind: podvisor_event_kind::PODVISOR_EVENT_PUT,
            key: std::ptr::null(),
            key_len: 0,
            value: std::ptr::null(),
            value_len: 0,
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            lease: 0,
            has_prev_kv: false,
            prev_value: std::ptr::null(),
            prev_value_len: 0,
        }
    }
}

/// The host's callback and its pointer, moved to the delivery thread.
struct Sink {
    callback: unsafe extern "C" fn(
        *const podvisor_watch_batch,
        podvisor_error_code,
        *const c_char,
        *mut c_void,
    ),
    userdata: *mut c_void,
}

// SAFETY: by the documented contract of `podvisor_client_watch`, `userdata` may be used from the
// watch's delivery thread, the only place the Sink is used.
unsafe impl Send for Sink {}

fn deliver_loop(mut watcher: Watcher, sink: Sink, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        match watcher.recv_timeout(Duration::from_millis(100)) {
            Ok(None) => {}
            Ok(Some(batch)) => {
                let batch = handle::register::<podvisor_watch_batch>(batch);
                // SAFETY: the host registered the callback for this; the batch handle stays
                // registered until after the call.
                unsafe { (sink.callback)(batch, PODVISOR_OK, std::ptr::null(), sink.userdata) };
                let _ = handle::release(batch.cast_const(), "batch");
            }
            Err(err) => {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                // No master reachable: reported, and the watch keeps trying; the rest end it.
                let ends = !matches!(err, podvisor_store::StoreError::Unavailable(_));
                let err = store_error(&err);
                let message = CString::new(err.message.replace('\0', "\\0")).unwrap_or_default();
                // SAFETY: as above; the message lives until the call returns.
                unsafe {
                    (sink.callback)(std::ptr::null(), err.code, message.as_ptr(), sink.userdata)
                };
                if ends {
                    return;
                }
            }
        }
    }
}

/// Fills `event` with empty values and sets its `struct_size`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `event` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_watch_event_init(
    event: *mut podvisor_watch_event,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `event` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(event, struct_size, "event") })
}

/// Watches the keys in `[key, range_end)` (`key` alone when `range_end` is empty; `"\0"` for
/// every key from `key` on). The first batch is an empty one confirming the watch. If the master
/// serving it fails, the watch resumes on another without losing or repeating a change.
///
/// - `client`: borrowed; the watch keeps working after the client is freed.
/// - `key`, `range_end`: as for `podvisor_client_range`; copied.
/// - `start_revision`: the first revision to deliver, or 0 for every change made after this call
///   returns (the current revision is read before it does; if no master answers that read, the
///   watch starts at what is current when it first reaches one).
/// - `callback`: called with each batch on a library thread; or NULL to poll with
///   `podvisor_watch_poll` instead.
/// - `userdata`: passed to `callback`; libpodvisor never reads or frees it. It must stay valid
///   until `podvisor_watch_free` returns.
/// - `watch`: receives the new handle, owned by the caller, freed with `podvisor_watch_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `client` or `watch` is NULL, or `key` is NULL with
/// a non-zero length; `PODVISOR_EINVAL` for an empty key; `PODVISOR_EHANDLE` for a bad `client`;
/// `PODVISOR_EOS` if the delivery thread could not start. Errors of the stream itself come to
/// the callback (with a NULL batch), or from `podvisor_watch_poll`. `PODVISOR_EUNAVAILABLE`
/// says no master has answered for the client's timeout; it comes once per outage, and the
/// watch keeps trying and goes on where it was. Any other error ends the watch.
///
/// Blocks: for start_revision 0, up to the client's timeout while it reads the current
/// revision; otherwise no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_client_watch(
    client: *const podvisor_client,
    key: *const u8,
    key_len: usize,
    range_end: *const u8,
    range_end_len: usize,
    start_revision: u64,
    callback: podvisor_watch_callback,
    userdata: *mut c_void,
    watch: *mut *mut podvisor_watch,
) -> podvisor_error_code {
    call(|| {
        let client = handle::get(client, "client")?;
        // SAFETY: the buffers are NULL or readable for their lengths, `watch` NULL or writable.
        let (range, out) = unsafe {
            (
                arg_range(key, key_len, range_end, range_end_len)?,
                Out::new(watch, "watch")?,
            )
        };
        let req = WatchRequest {
            range,
            start_revision,
            prev_kv: true,
            progress_notify: false,
        };
        let watcher = client.watch(req).map_err(|e| store_error(&e))?;
        let delivery = match callback {
            None => Delivery::Poll(Mutex::new(watcher)),
            Some(callback) => {
                let stop = Arc::new(AtomicBool::new(false));
                let sink = Sink { callback, userdata };
                let thread_stop = Arc::clone(&stop);
                let thread = crate::altstack::spawn_callback_thread("podvisor-watch", move || {
                    deliver_loop(watcher, sink, thread_stop);
                })
                .map_err(|e| FfiError::os("starting the watch delivery thread", &e))?;
                let thread_id = thread.thread().id();
                Delivery::Callback {
                    stop,
                    thread: Mutex::new(Some(thread)),
                    thread_id,
                }
            }
        };
        out.set(handle::register::<podvisor_watch>(WatchObject { delivery }));
        Ok(())
    })
}

/// Waits for the next batch of a polled watch (one created without a callback).
///
/// - `watch`: borrowed.
/// - `timeout_ms`: milliseconds to wait at most; 0 to only check, -1 to wait forever.
/// - `batch`: receives the batch, owned by the caller, freed with `podvisor_watch_batch_free`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ETIMEOUT` if no batch came in time;
/// `PODVISOR_EUNAVAILABLE` once per outage when no master has answered for the client's
/// timeout (the watch keeps trying; poll again); `PODVISOR_ECOMPACTED` if the start revision
/// was compacted away, or another code if the watch ended (then every later poll gives
/// `PODVISOR_ESTATE`); `PODVISOR_ENULL` if `watch` or `batch` is NULL;
/// `PODVISOR_EINVAL` for a negative timeout other than -1; `PODVISOR_EHANDLE` for a bad `watch`;
/// `PODVISOR_ESTATE` for a watch with a callback.
///
/// Blocks: yes, up to the timeout. Threads: any; polls of one watch are serialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_watch_poll(
    watch: *const podvisor_watch,
    timeout_ms: i64,
    batch: *mut *mut podvisor_watch_batch,
) -> podvisor_error_code {
    call(|| {
        let watch = handle::get(watch, "watch")?;
        // SAFETY: `batch` is NULL or writable (contract).
        let out = unsafe { Out::new(batch, "batch") }?;
        let timeout = arg_timeout_ms(timeout_ms, "timeout_ms")?
            .unwrap_or(Duration::from_secs(3600 * 24 * 365));
        let Delivery::Poll(watcher) = &watch.delivery else {
            return Err(FfiError::new(
                PODVISOR_ESTATE,
                "this watch delivers to a callback; it cannot be polled",
            ));
        };
        let mut watcher = watcher.lock().unwrap_or_else(|p| p.into_inner());
        match watcher.recv_timeout(timeout) {
            Ok(Some(next)) => {
                out.set(handle::register::<podvisor_watch_batch>(next));
                Ok(())
            }
            Ok(None) => Err(FfiError::new(
                PODVISOR_ETIMEOUT,
                "no change arrived in time",
            )),
            Err(podvisor_store::StoreError::Stopped) => {
                Err(FfiError::new(PODVISOR_ESTATE, "the watch has ended"))
            }
            Err(err) => Err(store_error(&err)),
        }
    })
}

/// Frees a watch: it stops, and once this returns its callback is not running and will not be
/// called again (except when called from that callback: then it returns at once, and the
/// callback is not called again after it returns). NULL does nothing.
///
/// Ownership: takes `watch`; it must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: until a callback in progress returns (up to 100 ms more for the thread to notice).
/// Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_watch_free(watch: *mut podvisor_watch) -> podvisor_error_code {
    call(|| {
        let Some(object) = handle::release(watch.cast_const(), "watch")? else {
            return Ok(());
        };
        if let Delivery::Callback {
            stop,
            thread,
            thread_id,
        } = &object.delivery
        {
            stop.store(true, Ordering::Release);
            if std::thread::current().id() != *thread_id {
                let thread = thread.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(thread) = thread {
                    let _ = thread.join();
                }
            }
        }
        Ok(())
    })
}

/// Tells how many changes a batch holds and up to which revision it covers.
///
/// - `batch`: borrowed.
/// - `len`: receives the number of changes (0 for the batch confirming the watch); may be NULL.
/// - `revision`: receives the revision up to which every change has been delivered; may be NULL.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `batch` is NULL; `PODVISOR_EHANDLE` for a bad
/// `batch`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_watch_batch_info(
    batch: *const podvisor_watch_batch,
    len: *mut usize,
    revision: *mut u64,
) -> podvisor_error_code {
    call(|| {
        let batch = handle::get(batch, "batch")?;
        // SAFETY: each out-pointer is NULL or writable (contract).
        let (len, revision) =
            unsafe { (OptOut::new(len, "len")?, OptOut::new(revision, "revision")?) };
        len.set(batch.events.len());
        revision.set(batch.revision);
        Ok(())
    })
}

/// Fills `event` with the change at `index`; its pointers borrow from the batch.
///
/// - `batch`: borrowed.
/// - `index`: below the length `podvisor_watch_batch_info` gives.
/// - `event`: initialised with `podvisor_watch_event_init`.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `batch` or `event` is NULL; `PODVISOR_EINVAL` for
/// an index out of range or an unknown `event->struct_size`; `PODVISOR_EHANDLE` for a bad
/// `batch`.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_watch_batch_event(
    batch: *const podvisor_watch_batch,
    index: usize,
    event: *mut podvisor_watch_event,
) -> podvisor_error_code {
    call(|| {
        let batch = handle::get(batch, "batch")?;
        // SAFETY: `event` is NULL or readable and writable for its `struct_size` (contract).
        let event = unsafe { ResultOut::new(event, "event") }?;
        let change = batch.events.get(index).ok_or_else(|| {
            FfiError::arg(
                PODVISOR_EINVAL,
                "index",
                format!("index {index} is past the {} changes", batch.events.len()),
            )
        })?;
        let kv = &change.kv;
        let prev = change.prev_kv.as_ref();
        let filled = podvisor_watch_event {
            kind: match change.kind {
                EventKind::Delete => podvisor_event_kind::PODVISOR_EVENT_DELETE,
                _ => podvisor_event_kind::PODVISOR_EVENT_PUT,
            },
            key: kv.key.as_ptr(),
            key_len: kv.key.len(),
            value: kv.value.as_ptr(),
            value_len: kv.value.len(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
            has_prev_kv: prev.is_some(),
            prev_value: prev.map_or(std::ptr::null(), |p| p.value.as_ptr()),
            prev_value_len: prev.map_or(0, |p| p.value.len()),
            ..podvisor_watch_event::defaults()
        };
        event.set(filled);
        Ok(())
    })
}

/// Frees a batch a poll returned. NULL does nothing. Batches lent to a callback are freed by
/// libpodvisor.
///
/// Ownership: takes `batch`; it and the pointers its events lent must not be used afterwards.
///
/// Returns `PODVISOR_OK`; `PODVISOR_EHANDLE` for a handle already freed or of another type.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_watch_batch_free(
    batch: *mut podvisor_watch_batch,
) -> podvisor_error_code {
    call(|| handle::release(batch.cast_const(), "batch").map(drop))
}
