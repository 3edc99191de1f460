//! Reaps every child of the agent, PID 1 of the sandbox, and hands exit statuses to whoever
//! waits for a particular pid.
//!
//! Orphans re-parented to PID 1 are reaped and dropped. A pid is registered by the code that
//! spawns it while holding the reaper's lock, so a status can never reach a later process that
//! reuses the pid.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::sys;

/// How long the reaper sleeps when the agent has no child at all.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// The agent's reaper.
#[derive(Default)]
pub struct Reaper {
    waiting: Mutex<HashMap<i32, Sender<i32>>>,
}

impl Reaper {
    /// Starts the reaping thread.
    pub fn start() -> Arc<Self> {
        let reaper = Arc::new(Self::default());
        let r = reaper.clone();
        thread::Builder::new()
            .name("reaper".into())
            .spawn(move || r.run())
            .expect("the agent can start its reaper thread");
        reaper
    }

    /// Runs `spawn` and registers the pid it returns; the receiver gets its raw wait status.
    pub fn spawn(
        &self,
        spawn: impl FnOnce() -> io::Result<i32>,
    ) -> io::Result<(i32, Receiver<i32>)> {
        let mut waiting = self.waiting.lock().expect("reaper lock is never poisoned");
        let pid = spawn()?;
        let (tx, rx) = channel();
        waiting.insert(pid, tx);
        Ok((pid, rx))
    }

    fn run(&self) {
        loop {
            match sys::wait_any(0) {
                Ok(Some((pid, status))) => {
                    let tx = self
                        .waiting
                        .lock()
                        .expect("reaper lock is never poisoned")
                        .remove(&pid);
                    if let Some(tx) = tx {
                        let _ = tx.send(status);
                    }
                }
                Ok(None) | Err(_) => thread::sleep(IDLE_POLL),
            }
        }
    }
}
