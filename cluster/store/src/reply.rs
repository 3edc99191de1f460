//! One-shot replies from the ready loop to the client thread that asked.
//!
//! A client thread hands the loop a [`Responder`] and sleeps on the matching [`Waiter`]. A
//! general channel spins and yields before it sleeps; with dozens of client threads on a few
//! cores those yields cost more CPU than the hand-off itself. Here the waiter parks at once, and
//! the loop's answer is an uncontended lock, a store and an unpark, which makes a system call
//! only when the waiter is really asleep.
//!
//! A responder dropped without an answer (the loop stopped) wakes its waiter with
//! [`Closed::Dropped`].

use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::transport::lock;

enum State<T> {
    Waiting,
    Answered(T),
    Dropped,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    waiter: Thread,
}

/// The loop's end: answers once.
pub struct Responder<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// The asking thread's end.
pub struct Waiter<T> {
    slot: Arc<Slot<T>>,
}

/// Why a [`Waiter`] got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// The timeout passed first.
    Timeout,
    /// The responder was dropped unanswered.
    Dropped,
}

/// A responder and the waiter of the calling thread; only that thread may wait on it.
pub fn pair<T>() -> (Responder<T>, Waiter<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        waiter: thread::current(),
    });
    (
        Responder {
            slot: Some(Arc::clone(&slot)),
        },
        Waiter { slot },
    )
}

impl<T> Responder<T> {
    /// Delivers the answer and wakes the waiter; an answer nobody waits for any more is dropped.
    pub fn send(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            Self::finish(&slot, State::Answered(value));
        }
    }

    fn finish(slot: &Slot<T>, to: State<T>) {
        *lock(&slot.state) = to;
        slot.waiter.unpark();
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            Self::finish(&slot, State::Dropped);
        }
    }
}

impl<T> Waiter<T> {
    /// Waits up to `timeout` for the answer.
    ///
    /// # Errors
    /// [`Closed::Timeout`] when it does not come in time, [`Closed::Dropped`] when the responder
    /// was dropped unanswered.
    pub fn recv_timeout(self, timeout: Duration) -> Result<T, Closed> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut st = lock(&self.slot.state);
                match std::mem::replace(&mut *st, State::Waiting) {
                    State::Answered(v) => return Ok(v),
                    State::Dropped => return Err(Closed::Dropped),
                    State::Waiting => {}
                }
            }
            // Parking may return early (a stale unpark, or spuriously): the loop checks again.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Closed::Timeout);
            }
            thread::park_timeout(left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_answer_from_another_thread_arrives() {
        let (tx, rx) = pair();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            tx.send(7u32);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(7));
        t.join().unwrap();
    }

    #[test]
    fn test_recv_fails_when_responder_is_dropped() {
        let (tx, rx) = pair::<u32>();
        thread::spawn(move || drop(tx)).join().unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(Closed::Dropped)
        );
    }

    #[test]
    fn test_recv_fails_when_no_answer_in_time() {
        let (_tx, rx) = pair::<u32>();
        let t = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)),
            Err(Closed::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
    }
}
