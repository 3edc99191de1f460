//! Container logs on the host: CRI-style lines, a size bound with rotation, and live following.
//!
//! Each container's output goes to `<dir>/<container>.log`, one line per chunk line:
//! `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, where `P` marks a partial line (the chunk did
//! not end with a newline). When the file would grow past [`LogPolicy::max_bytes`] it is renamed
//! to `.log.1` (older files shift up, the oldest beyond [`LogPolicy::max_files`] is dropped) and a
//! new file begins. A [`LogFollower`] streams the current file and moves to the new one across
//! rotations.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use podvisor_agent::protocol::Stream;

/// Size bound and rotation of container logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// The largest a log file grows before rotation, in bytes.
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    pub max_files: u32,
}

impl Default for LogPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 10 << 20,
            max_files: 3,
        }
    }
}

/// Writes one container's log.
pub struct LogWriter {
    path: PathBuf,
    policy: LogPolicy,
    file: File,
    size: u64,
}

impl LogWriter {
    /// Opens (appending) the log at `path`.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be opened.
    pub fn open(path: PathBuf, policy: LogPolicy) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            policy,
            file,
            size,
        })
    }

    /// Appends a chunk of `stream`.
    ///
    /// # Errors
    ///
    /// Fails when writing or rotating fails.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let time = rfc3339(SystemTime::now());
        let name = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        let mut buf = Vec::with_capacity(data.len() + 64);
        for line in data.split_inclusive(|b| *b == b'\n') {
            let (text, tag) = match line.strip_suffix(b"\n") {
                Some(t) => (t, "F"),
                None => (line, "P"),
            };
            let prefix = format!("{time} {name} ");
            // A line too long for one file is cut into partial records that each fit.
            let room = (self.policy.max_bytes as usize)
                .saturating_sub(prefix.len() + 3)
                .max(1);
            let mut pieces = text.chunks(room).peekable();
            if pieces.peek().is_none() {
                self.append(&mut buf, &prefix, tag, b"")?;
            }
            while let Some(piece) = pieces.next() {
                let piece_tag = if pieces.peek().is_some() { "P" } else { tag };
                self.append(&mut buf, &prefix, piece_tag, piece)?;
            }
        }
        Ok(())
    }

    /// Writes one record, rotating first if it would not fit in the current file.
    fn append(
        &mut self,
        buf: &mut Vec<u8>,
        prefix: &str,
        tag: &str,
        text: &[u8],
    ) -> io::Result<()> {
        buf.clear();
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(tag.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(text);
        buf.push(b'\n');
        if self.size > 0 && self.size + buf.len() as u64 > self.policy.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.policy.max_files == 0 {
            fs::remove_file(&self.path)?;
        } else {
            let _ = fs::remove_file(numbered(self.policy.max_files));
            for n in (1..self.policy.max_files).rev() {
                let _ = fs::rename(numbered(n), numbered(n + 1));
            }
            fs::rename(&self.path, numbered(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Formats a time as RFC 3339 in UTC with nanoseconds.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Streams a log as it grows, across rotations.
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
}

impl LogFollower {
    /// Follows the log at `path` from its beginning (the file may not exist yet).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            file: None,
            inode: 0,
        }
    }

    /// Reads what is there now; empty when nothing new was written.
    ///
    /// # Errors
    ///
    /// Fails when the log cannot be read.
    pub fn read_available(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        if self.file.is_none() {
            // The beginning of the log is its oldest file, found by inode as names shift.
            let Some(&(_, oldest)) = self.chain().last() else {
                return Ok(out);
            };
            let Some(f) = self.open_inode(oldest)? else {
                return Ok(out);
            };
            self.inode = oldest;
            self.file = Some(f);
        }
        let file = self.file.as_mut().expect("opened above");
        file.read_to_end(&mut out)?;

        // Rotations renamed our file away: it was drained above through its descriptor; go on
        // with the file written after it, until the current one.
        // A rotation renamed our file away: it was drained above through its descriptor; go on
        // with the file written after it, found by inode since names shift as files rotate,
        // until the current one.
        for _ in 0..64 {
            match fs::metadata(&self.path) {
                Ok(m) if m.ino() != self.inode => {}
                _ => break,
            }
            if let Some(mut f) = self.open_next()? {
                self.inode = f.metadata()?.ino();
                f.read_to_end(&mut out)?;
                self.file = Some(f);
            }
        }
        Ok(out)
    }

    fn numbered(&self, n: u32) -> PathBuf {
        PathBuf::from(format!("{}.{n}", self.path.display()))
    }

    /// The files of the log, newest first: the current one, then `.1`, `.2`, ... A rotation in
    /// progress leaves one gap in the numbers, so the scan stops at the second missing one.
    fn chain(&self) -> Vec<(PathBuf, u64)> {
        let mut chain = Vec::new();
        if let Ok(m) = fs::metadata(&self.path) {
            chain.push((self.path.clone(), m.ino()));
        }
        let mut missing = 0;
        for n in 1.. {
            match fs::metadata(self.numbered(n)) {
                Ok(m) => {
                    missing = 0;
                    if chain.last().is_none_or(|(_, ino)| *ino != m.ino()) {
                        chain.push((self.numbered(n), m.ino()));
                    }
                }
                Err(_) if missing == 0 => missing = 1,
                Err(_) => break,
            }
        }
        chain
    }

    /// Opens the file written right after the one we hold (the oldest one left when ours was
    /// dropped), or `None` when it vanished before it could be opened.
    fn open_next(&self) -> io::Result<Option<File>> {
        let chain = self.chain();
        let want = match chain.iter().position(|(_, ino)| *ino == self.inode) {
            Some(0) => return Ok(None),
            Some(k) => chain[k - 1].1,
            None => match chain.last() {
                Some((_, ino)) => *ino,
                None => return Ok(None),
            },
        };
        self.open_inode(want)
    }

    /// Opens the file of the log with inode `want`, wherever rotation has moved it.
    fn open_inode(&self, want: u64) -> io::Result<Option<File>> {
        for _ in 0..8 {
            for (path, ino) in self.chain() {
                if ino != want {
                    continue;
                }
                if let Ok(f) = File::open(&path)
                    && f.metadata()?.ino() == want
                {
                    return Ok(Some(f));
                }
            }
        }
        Ok(None)
    }

    /// Waits up to `timeout` for new lines; a timeout whose end the clock cannot represent waits
    /// until some come.
    ///
    /// # Errors
    ///
    /// Fails when the log cannot be read.
    pub fn next_chunk(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let data = self.read_available()?;
            if !data.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(data);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Seeks to the current end, to follow only what comes next.
    ///
    /// # Errors
    ///
    /// Fails when the log cannot be read.
    pub fn skip_to_end(&mut self) -> io::Result<()> {
        self.read_available()?;
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::End(0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rfc3339_formats_known_instant() {
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 3661, 5);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01.000000005Z");
    }

    #[test]
    fn test_log_is_bounded_rotated_and_followed_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let policy = LogPolicy {
            max_bytes: 200,
            max_files: 2,
        };
        let mut w = LogWriter::open(path.clone(), policy).unwrap();
        let mut follower = LogFollower::new(&path);
        let mut seen = Vec::new();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
            seen.extend(follower.read_available().unwrap());
        }
        w.write(Stream::Stderr, b"partial").unwrap();
        seen.extend(follower.read_available().unwrap());
        let text = String::from_utf8(seen).unwrap();
        for i in 0..40 {
            assert!(
                text.contains(&format!(" stdout F line {i}\n")),
                "line {i} missing"
            );
        }
        assert!(text.ends_with(" stderr P partial\n"));
        for f in ["c.log", "c.log.1", "c.log.2"] {
            assert!(
                fs::metadata(dir.path().join(f)).unwrap().len() <= 200,
                "{f} over bound"
            );
        }
        assert!(!dir.path().join("c.log.3").exists());
    }

    #[test]
    fn test_next_chunk_takes_a_timeout_past_the_clocks_range() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(path.clone(), LogPolicy::default()).expect("log opens");
        w.write(Stream::Stdout, b"ready\n").expect("log written");
        let mut follower = LogFollower::new(&path);
        let chunk = follower.next_chunk(Duration::MAX).expect("log read");
        assert!(String::from_utf8_lossy(&chunk).ends_with(" stdout F ready\n"));
    }
}
