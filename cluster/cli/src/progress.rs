//! Progress on stderr for anything that takes more than a second: a line that says what is
//! awaited, a dot a second while it lasts, and how long it took.

use std::io::Write;
use std::time::{Duration, Instant};

/// One awaited thing.
pub struct Progress {
    what: String,
    started: Instant,
    last_dot: Instant,
    shown: bool,
}

impl Progress {
    /// Starts waiting for `what`; nothing is printed until a second has passed.
    pub fn new(what: impl Into<String>) -> Self {
        let now = Instant::now();
        Progress {
            what: what.into(),
            started: now,
            last_dot: now,
            shown: false,
        }
    }

    /// Called while waiting: prints the line after a second, then a dot a second.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if !self.shown && now - self.started >= Duration::from_secs(1) {
            eprint!("{} ...", self.what);
            self.shown = true;
            self.last_dot = now;
        } else if self.shown && now - self.last_dot >= Duration::from_secs(1) {
            eprint!(".");
            self.last_dot = now;
        }
        let _ = std::io::stderr().flush();
    }

    /// Ends the wait successfully.
    pub fn done(self) {
        if self.shown {
            eprintln!(" done ({:.1}s)", self.started.elapsed().as_secs_f64());
        }
    }

    /// Ends the wait unsuccessfully.
    pub fn fail(self) {
        if self.shown {
            eprintln!(" failed ({:.1}s)", self.started.elapsed().as_secs_f64());
        }
    }
}

/// Announces a step that is about to take a while, on stderr.
pub fn step(text: &str) {
    eprintln!("==> {text}");
}
