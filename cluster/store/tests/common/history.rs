//! Concurrent client histories and their linearizability check.
//!
//! Workers run puts, gets and compare-and-set transactions on a few keys and log every
//! invocation and return, in real-time order, in one shared history. An operation whose
//! outcome is unknown (the client gave up) stays in flight for ever, and its worker continues
//! under a new thread id, as the checker requires. Each key is a register with CAS and is
//! checked on its own with stateright's `LinearizabilityTester`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use podvisor_store::api::{Compare, CompareOp, CompareTarget, PutRequest, Txn, TxnOp};
use podvisor_store::{Client, StoreError};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// Completed operations each key needs for its check to mean something.
const MIN_DONE_PER_KEY: usize = 5;

/// A register holding an optional number, with compare-and-set.
#[derive(Clone, Debug, Default)]
pub struct CasRegister(pub Option<u64>);

#[derive(Clone, Debug, PartialEq)]
pub enum KvOp {
    Put(u64),
    Get,
    Cas(Option<u64>, u64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum KvRet {
    Put,
    Got(Option<u64>),
    Swapped(bool),
}

impl SequentialSpec for CasRegister {
    type Op = KvOp;
    type Ret = KvRet;

    fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Put(v) => {
                self.0 = Some(*v);
                KvRet::Put
            }
            KvOp::Get => KvRet::Got(self.0),
            KvOp::Cas(expected, new) => {
                if self.0 == *expected {
                    self.0 = Some(*new);
                    KvRet::Swapped(true)
                } else {
                    KvRet::Swapped(false)
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Invoke(u64, usize, KvOp),
    Return(u64, usize, KvRet),
}

/// The shared, real-time ordered history.
#[derive(Clone, Default)]
pub struct History {
    steps: Arc<Mutex<Vec<Step>>>,
    next_thread: Arc<AtomicU64>,
    pub ok: Arc<AtomicU64>,
    pub unknown: Arc<AtomicU64>,
}

fn parse(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl History {
    /// Runs `workers` threads against `keys` keys until `stop` is set.
    pub fn spawn_workers(
        &self,
        workers: usize,
        keys: usize,
        prefix: &str,
        make_client: impl Fn() -> Client + Send + Sync + 'static,
        stop: Arc<AtomicBool>,
    ) -> Vec<thread::JoinHandle<()>> {
        let make_client = Arc::new(make_client);
        (0..workers)
            .map(|w| {
                let h = self.clone();
                let stop = Arc::clone(&stop);
                let mk = Arc::clone(&make_client);
                let prefix = prefix.to_string();
                thread::spawn(move || {
                    let client = mk();
                    let mut tid = h.next_thread.fetch_add(1, Ordering::SeqCst);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let key = (n as usize * 7 + w) % keys;
                        let kname = format!("{prefix}{key}");
                        let value = (w as u64) * 1_000_000 + n;
                        let op = match n % 3 {
                            0 => KvOp::Put(value),
                            1 => KvOp::Get,
                            _ => {
                                let expected = client
                                    .get_serializable(kname.as_str())
                                    .ok()
                                    .flatten()
                                    .and_then(|kv| parse(&kv.value));
                                KvOp::Cas(expected, value)
                            }
                        };
                        h.steps
                            .lock()
                            .unwrap()
                            .push(Step::Invoke(tid, key, op.clone()));
                        let ret = run(&client, &kname, &op);
                        match ret {
                            Ok(r) => {
                                h.ok.fetch_add(1, Ordering::Relaxed);
                                h.steps.lock().unwrap().push(Step::Return(tid, key, r));
                            }
                            Err(e) if matches!(op, KvOp::Get) || definitely_failed(&e) => {
                                // A read that failed, or a write refused before it was proposed,
                                // had no effect: record nothing more, but the op must not linger.
                                let _ = e;
                                let mut steps = h.steps.lock().unwrap();
                                let last = steps
                                    .iter()
                                    .rposition(|s| matches!(s, Step::Invoke(t, _, _) if *t == tid));
                                if let Some(pos) = last {
                                    steps.remove(pos);
                                }
                            }
                            Err(_) => {
                                h.unknown.fetch_add(1, Ordering::Relaxed);
                                tid = h.next_thread.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect()
    }

    /// Checks every key's history; returns the number of operations checked.
    pub fn check(&self) -> usize {
        let steps = self.steps.lock().unwrap().clone();
        let mut per_key: BTreeMap<usize, LinearizabilityTester<u64, CasRegister>> = BTreeMap::new();
        for s in &steps {
            match s {
                Step::Invoke(t, k, op) => {
                    per_key
                        .entry(*k)
                        .or_insert_with(|| LinearizabilityTester::new(CasRegister(None)))
                        .on_invoke(*t, op.clone())
                        .expect("well-formed history");
                }
                Step::Return(t, k, r) => {
                    per_key
                        .get_mut(k)
                        .unwrap()
                        .on_return(*t, r.clone())
                        .expect("well-formed history");
                }
            }
        }
        // The tester searches recursively, one frame per operation: a long history needs more
        // than a test thread's stack.
        let checker = thread::Builder::new()
            .name("linearizability".into())
            .stack_size(512 << 20)
            .spawn(move || {
                per_key
                    .iter()
                    .find(|(_, t)| t.serialized_history().is_none())
                    .map(|(k, _)| *k)
            })
            .expect("checker thread starts");
        let bad = checker.join().expect("checker finishes");
        assert!(bad.is_none(), "history of key {bad:?} is not linearizable");
        // A history of failures proves nothing: every key must have seen operations complete.
        let mut done: BTreeMap<usize, usize> = BTreeMap::new();
        for s in &steps {
            let (Step::Invoke(_, k, _) | Step::Return(_, k, _)) = s;
            let n = done.entry(*k).or_default();
            if matches!(s, Step::Return(..)) {
                *n += 1;
            }
        }
        assert!(
            !done.is_empty() && done.values().all(|n| *n >= MIN_DONE_PER_KEY),
            "too few operations completed to check: {done:?} per key"
        );
        steps.len()
    }
}

/// Errors that prove the operation was never applied.
fn definitely_failed(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::NotLeader { .. })
}

fn run(client: &Client, key: &str, op: &KvOp) -> Result<KvRet, StoreError> {
    match op {
        KvOp::Put(v) => client.put(key, v.to_string()).map(|_| KvRet::Put),
        KvOp::Get => client
            .get(key)
            .map(|kv| KvRet::Got(kv.and_then(|kv| parse(&kv.value)))),
        KvOp::Cas(expected, new) => {
            let compare = match expected {
                Some(v) => Compare::value_equals(key, v.to_string()),
                None => Compare {
                    key: key.into(),
                    op: CompareOp::Equal,
                    target: CompareTarget::Version(0),
                },
            };
            let put = TxnOp::Put(PutRequest {
                key: key.into(),
                value: new.to_string().into_bytes(),
                ..Default::default()
            });
            client
                .txn(Txn {
                    compares: vec![compare],
                    success: vec![put],
                    failure: vec![],
                })
                .map(|r| KvRet::Swapped(r.succeeded))
        }
    }
}
