//! The open connections of a master, so that stopping can close them all.
//!
//! A connection joins the set when it is accepted or dialled and leaves it when the thread that
//! serves it lets go of its [`Tracked`] guard, so the set holds exactly the connections still
//! in use and a closed one gives its descriptor back at once.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};

use crate::transport::lock;

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, TcpStream>,
}

/// A set of open connections.
#[derive(Clone, Default)]
pub struct Conns {
    inner: Arc<Mutex<Inner>>,
}

/// A connection's place in its [`Conns`]; dropping it takes the connection out of the set.
pub struct Tracked {
    inner: Arc<Mutex<Inner>>,
    id: u64,
}

impl Conns {
    /// Adds `stream` (through a clone of its descriptor) until the guard is dropped.
    ///
    /// # Errors
    /// The error of cloning the descriptor.
    pub fn track(&self, stream: &TcpStream) -> std::io::Result<Tracked> {
        let clone = stream.try_clone()?;
        let mut inner = lock(&self.inner);
        inner.next += 1;
        let id = inner.next;
        inner.open.insert(id, clone);
        Ok(Tracked {
            inner: Arc::clone(&self.inner),
            id,
        })
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        lock(&self.inner).open.len()
    }

    /// Shuts every open connection down, which ends the threads blocked on them.
    pub fn close_all(&self) {
        for (_, s) in lock(&self.inner).open.drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        lock(&self.inner).open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn test_a_connection_leaves_the_set_when_its_guard_drops() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let b = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let conns = Conns::default();
        let ga = conns.track(&a).unwrap();
        let gb = conns.track(&b).unwrap();
        assert_eq!(conns.len(), 2);
        drop(ga);
        assert_eq!(conns.len(), 1);
        conns.close_all();
        assert_eq!(conns.len(), 0);
        drop(gb);
        assert_eq!(conns.len(), 0);
    }
}
