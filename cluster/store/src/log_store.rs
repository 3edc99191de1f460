//! Durable raft state: the log in raft-engine, the state machine in checksummed snapshot files.
//!
//! Why these engines:
//! - The raft log and hard state live in [raft-engine], the log engine TiKV runs in production
//!   for its own raft groups. It is an append-only, checksummed log with group commit (writers
//!   that arrive during an fsync share the next one), compaction by index, and a recovery mode
//!   that refuses a corrupt file instead of guessing ([`RecoveryMode::AbsoluteConsistency`]).
//!   Every write the ready loop makes is synced before raft is told it is durable.
//! - The state machine is kept in memory and written whole, with its applied index, to a
//!   snapshot file (checksummed, fsynced, renamed into place, directory fsynced). The applied
//!   index and the state are therefore one write: after a crash the master loads the newest
//!   snapshot and raft replays the committed entries after it, so every entry is applied
//!   exactly once. This is how etcd's raft example and many raft stores pair a log with a
//!   state machine; a B-tree engine (redb, bbolt) would only pay off once the state outgrows
//!   memory, which a control plane's object set does not.
//!
//! The log keeps entries in raft group [`ENTRY_GROUP`] and the hard state as a key in group
//! [`META_GROUP`], so a snapshot received from the leader can wipe the whole entry group and
//! record the new hard state in the same atomic write.
//!
//! [raft-engine]: https://github.com/tikv/raft-engine

use std::fs;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState, Snapshot};
use raft_engine::{Command, Config, Engine, LogBatch, MessageExt, RecoveryMode};

use crate::error::{Result, StoreError};
use crate::state_machine::StateMachine;

/// raft-engine group holding the log entries.
pub const ENTRY_GROUP: u64 = 1;
/// raft-engine group holding the hard state.
pub const META_GROUP: u64 = 2;
const HARD_STATE_KEY: &[u8] = b"hard_state";
const SNAP_MAGIC: &[u8; 8] = b"PVSNAP01";

#[derive(Clone)]
struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;

    fn index(e: &Entry) -> u64 {
        e.index
    }
}

/// The durable raft log of one master.
pub struct LogStore {
    engine: Engine,
    dir: PathBuf,
}

impl LogStore {
    /// Opens (or creates) the log under `dir`.
    ///
    /// # Errors
    /// [`StoreError::LogEngine`] when the files cannot be opened or fail their checks.
    pub fn open(dir: &Path) -> Result<Self> {
        let cfg = |recovery_mode| Config {
            dir: dir.to_string_lossy().into_owned(),
            recovery_mode,
            // Values are mostly small or already compact; compressing every batch costs CPU on
            // the commit path for little space.
            batch_compression_threshold: raft_engine::ReadableSize(0),
            target_file_size: raft_engine::ReadableSize::mb(32),
            purge_threshold: raft_engine::ReadableSize::mb(256),
            ..Default::default()
        };
        let engine_err = |source| StoreError::LogEngine {
            path: dir.to_path_buf(),
            source,
        };
        match Engine::open(cfg(RecoveryMode::AbsoluteConsistency)) {
            Ok(engine) => {
                return Ok(LogStore {
                    engine,
                    dir: dir.to_path_buf(),
                });
            }
            Err(raft_engine::Error::Corruption(_)) => {}
            Err(e) => return Err(engine_err(e)),
        }

        // The strict open failed. A crash of the machine can cut the last, unsynced write
        // short, which leaves a tail only the tolerant mode accepts. Open tolerantly, then
        // accept what it cut off only if it is such a torn write (see `is_torn_tail`).
        // Anything else is damage to written data: restore the file and refuse.
        let tails = last_log_files(dir)?;
        let engine = Engine::open(cfg(RecoveryMode::TolerateTailCorruption)).map_err(engine_err)?;
        for (path, before) in &tails {
            let after = fs::metadata(path)
                .map(|m| m.len() as usize)
                .unwrap_or(before.len());
            let torn = after <= before.len() && is_torn_tail(before, after);
            if !torn {
                drop(engine);
                fs::write(path, before)
                    .and_then(|()| fs::File::open(path)?.sync_all())
                    .map_err(|e| StoreError::io(format!("restoring {}", path.display()), e))?;
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    reason: format!(
                        "the record at offset {after} fails its checksum, but it was written \
                         whole, or data follows it"
                    ),
                });
            }
            if before[after.min(before.len())..].iter().any(|b| *b != 0) {
                tracing::warn!(path = %path.display(), offset = after, "dropped a torn, unsynced write at the log tail");
            }
        }
        Ok(LogStore {
            engine,
            dir: dir.to_path_buf(),
        })
    }

    fn err(&self, source: raft_engine::Error) -> StoreError {
        StoreError::LogEngine {
            path: self.dir.clone(),
            source,
        }
    }

    /// Appends entries and records the hard state in one write, fsynced when `sync` is set.
    ///
    /// # Errors
    /// [`StoreError::LogEngine`] when the write fails.
    pub fn append(&self, entries: &[Entry], hs: Option<&HardState>, sync: bool) -> Result<()> {
        let mut batch = LogBatch::default();
        if !entries.is_empty() {
            batch
                .add_entries::<EntryExt>(ENTRY_GROUP, entries)
                .map_err(|e| self.err(e))?;
        }
        if let Some(hs) = hs {
            batch
                .put_message(META_GROUP, HARD_STATE_KEY.to_vec(), hs)
                .map_err(|e| self.err(e))?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.engine
            .write(&mut batch, sync)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes every earlier write durable.
    ///
    /// # Errors
    /// [`StoreError::LogEngine`] when the fsync fails.
    pub fn sync(&self) -> Result<()> {
        self.engine.sync().map_err(|e| self.err(e))
    }

    /// Drops every entry (a snapshot replaced the log) and records the hard state, atomically.
    ///
    /// # Errors
    /// [`StoreError::LogEngine`] when the write fails.
    pub fn reset_to_snapshot(&self, hs: &HardState) -> Result<()> {
        let mut batch = LogBatch::default();
        batch.add_command(ENTRY_GROUP, Command::Clean);
        batch
            .put_message(META_GROUP, HARD_STATE_KEY.to_vec(), hs)
            .map_err(|e| self.err(e))?;
        self.engine
            .write(&mut batch, true)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets entries below `index`.
    pub fn compact_to(&self, index: u64) {
        self.engine.compact_to(ENTRY_GROUP, index);
        // Purging rewrites or deletes whole files; a failure only delays reclaiming space.
        if let Err(e) = self.engine.purge_expired_files() {
            tracing::warn!(error = %e, "purging compacted raft log files failed");
        }
    }

    /// The stored hard state (default when none was written).
    ///
    /// # Errors
    /// [`StoreError::LogEngine`] when it cannot be read or decoded.
    pub fn hard_state(&self) -> Result<HardState> {
        Ok(self
            .engine
            .get_message::<HardState>(META_GROUP, HARD_STATE_KEY)
            .map_err(|e| self.err(e))?
            .unwrap_or_default())
    }

    /// Every stored entry with index at or above `from`.
    ///
    /// # Errors
    /// [`StoreError::LogEngine`] when they cannot be read, [`StoreError::Corrupt`] when the log
    /// has a gap after `from`.
    pub fn entries_from(&self, from: u64) -> Result<Vec<Entry>> {
        let (Some(first), Some(last)) = (
            self.engine.first_index(ENTRY_GROUP),
            self.engine.last_index(ENTRY_GROUP),
        ) else {
            return Ok(Vec::new());
        };
        if last < from {
            return Ok(Vec::new());
        }
        if first > from {
            return Err(StoreError::Corrupt {
                path: self.dir.clone(),
                reason: format!("the log starts at index {first}, but index {from} is needed"),
            });
        }
        let mut out = Vec::new();
        self.engine
            .fetch_entries_to::<EntryExt>(ENTRY_GROUP, from, last + 1, None, &mut out)
            .map_err(|e| self.err(e))?;
        Ok(out)
    }
}

/// A disk writes a sector whole or not at all; a torn write misses whole sectors.
const SECTOR: usize = 512;
/// raft-engine's record header: `[len << 8 | compression: u64 BE][item offset: u64 BE]`.
const RECORD_HEADER: usize = 16;

/// Whether the bytes from `at` on, where the tolerant open stopped reading, are a write that a
/// crash cut short rather than damage to data that was written.
///
/// The engine preallocates its files with zeros, so a write cut short leaves at least one
/// sector of its record still zero, and nothing but zeros after it. This is the test etcd's
/// WAL makes for a torn entry. A record whose header gives its length and all of whose sectors
/// hold data was written whole; if it fails its checksum, it was damaged afterwards, and so
/// was the file if data follows the record. Both are refused. (A record that holds a whole
/// sector of zeros by chance, and is also damaged, passes as torn: the same limit etcd has.)
fn is_torn_tail(bytes: &[u8], at: usize) -> bool {
    let Some(rest) = bytes.get(at..) else {
        return true;
    };
    let zero = |b: &[u8]| b.iter().all(|b| *b == 0);
    let sector_end = |from: usize| (from / SECTOR + 1) * SECTOR;
    let len = rest
        .get(..8)
        .map(|h| (u64::from_be_bytes(h.try_into().expect("8 bytes")) >> 8) as usize);
    let Some(len) = len.filter(|l| (RECORD_HEADER..=rest.len()).contains(l)) else {
        // No length to go by: torn only if the header's own sector never reached the disk.
        return zero(&bytes[at..sector_end(at).min(bytes.len())]);
    };
    let end = at + len;
    // The header's sector was written (it holds the length); look at the sectors after it.
    let mut from = sector_end(at);
    let mut missing_sector = false;
    while from < end {
        let to = sector_end(from).min(end);
        missing_sector |= zero(&bytes[from..to]);
        from = to;
    }
    missing_sector && zero(&bytes[end..])
}

/// The newest log file of each queue, with its bytes.
fn last_log_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let rd =
        fs::read_dir(dir).map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    let mut newest: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for entry in rd.flatten() {
        let path = entry.path();
        let Some(ext) = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if ext != "raftlog" && ext != "rewrite" {
            continue;
        }
        let keep = newest
            .get(&ext)
            .is_none_or(|p| p.file_name() < path.file_name());
        if keep {
            newest.insert(ext, path);
        }
    }
    newest
        .into_values()
        .map(|p| {
            let bytes =
                fs::read(&p).map_err(|e| StoreError::io(format!("reading {}", p.display()), e))?;
            Ok((p, bytes))
        })
        .collect()
}

/// Snapshot files of one master's state machine.
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    /// Opens (creating) the directory.
    ///
    /// # Errors
    /// [`StoreError::Io`] when it cannot be created.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        Ok(SnapshotDir {
            dir: dir.to_path_buf(),
        })
    }

    fn path_of(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{index:020}.snap"))
    }

    /// Writes the state durably; returns once it is fsynced and in place.
    ///
    /// # Errors
    /// [`StoreError::Io`] when a file operation fails.
    pub fn save(&self, state: &[u8], index: u64) -> Result<()> {
        self.save_with(index, |w| w.write_all(state))
    }

    /// Encodes `sm` straight into its snapshot file, without building the whole encoding in
    /// memory first; returns once it is fsynced and in place.
    ///
    /// # Errors
    /// [`StoreError::Io`] when a file operation fails.
    pub fn save_state(&self, sm: &StateMachine) -> Result<()> {
        self.save_with(sm.applied_index, |w| {
            bincode::serialize_into(w, sm).map_err(|e| match *e {
                bincode::ErrorKind::Io(e) => e,
                other => std::io::Error::other(other.to_string()),
            })
        })
    }

    /// Writes a snapshot file whose body `body` produces: a zeroed header first, the body
    /// buffered and then checksummed in large chunks, then the real header over the zeros.
    fn save_with(
        &self,
        index: u64,
        body: impl FnOnce(&mut BufWriter<ChecksumWriter>) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = self.path_of(index);
        let tmp = path.with_extension("tmp");
        let io = |what: &str, e| StoreError::io(format!("{what} {}", tmp.display()), e);
        let mut f = fs::File::create(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(&[0u8; 20]).map_err(|e| io("writing", e))?;
        let mut w = BufWriter::with_capacity(
            1 << 20,
            ChecksumWriter {
                file: f,
                hasher: crc32fast::Hasher::new(),
                len: 0,
            },
        );
        body(&mut w).map_err(|e| io("writing", e))?;
        let w = w.into_inner().map_err(|e| io("writing", e.into_error()))?;
        let (mut f, crc, len) = (w.file, w.hasher.finalize(), w.len);
        let mut header = Vec::with_capacity(20);
        header.extend_from_slice(SNAP_MAGIC);
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
        f.rewind()
            .and_then(|()| f.write_all(&header))
            .map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
        fs::rename(&tmp, &path).map_err(|e| io("renaming", e))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(format!("syncing {}", self.dir.display()), e))?;

        // Keep the newest two.
        let mut all = self.list()?;
        all.sort_unstable();
        for old in all.iter().rev().skip(2) {
            let _ = fs::remove_file(self.path_of(*old));
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<u64>> {
        let rd = fs::read_dir(&self.dir)
            .map_err(|e| StoreError::io(format!("listing {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".snap") {
                if let Ok(i) = stem.parse::<u64>() {
                    out.push(i);
                }
            }
        }
        Ok(out)
    }

    /// Loads the newest snapshot, if any.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the newest file fails its checks: a snapshot is renamed into
    /// place only once synced, so a bad one is damage, not a torn write.
    pub fn load_latest(&self) -> Result<Option<StateMachine>> {
        let Some(index) = self.list()?.into_iter().max() else {
            return Ok(None);
        };
        let path = self.path_of(index);
        let bytes = fs::read(&path)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            reason,
        };
        if bytes.len() < 20 || &bytes[..8] != SNAP_MAGIC {
            return Err(corrupt("missing snapshot header".into()));
        }
        let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
        let body = &bytes[20..];
        if body.len() != len {
            return Err(corrupt(format!(
                "length {} but header says {len}",
                body.len()
            )));
        }
        if crc32fast::hash(body) != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        let sm = StateMachine::decode(body).map_err(corrupt)?;
        if sm.applied_index != index {
            return Err(corrupt(format!(
                "holds index {} in a file named {index}",
                sm.applied_index
            )));
        }
        Ok(Some(sm))
    }
}

/// Writes to a snapshot file while counting the bytes and computing their crc32.
struct ChecksumWriter {
    file: fs::File,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl Write for ChecksumWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Builds a raft snapshot message from the encoded state.
pub fn raft_snapshot(sm: &StateMachine) -> Snapshot {
    let mut snap = Snapshot {
        data: sm.encode().into(),
        ..Default::default()
    };
    let meta = snap.mut_metadata();
    meta.index = sm.applied_index;
    meta.term = sm.applied_term;
    meta.set_conf_state(sm.membership.to_conf_state());
    snap
}

/// Encodes a hard state for comparisons in tests and logs.
pub fn hard_state_bytes(hs: &HardState) -> Vec<u8> {
    hs.write_to_bytes().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8; 8].into(),
            ..Default::default()
        }
    }

    /// A record as raft-engine lays it out: header with its length, then `body`.
    fn record(body: &[u8]) -> Vec<u8> {
        let len = (RECORD_HEADER + body.len()) as u64;
        let mut r = (len << 8).to_be_bytes().to_vec();
        r.extend_from_slice(&16u64.to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn test_torn_tail_tells_a_cut_write_from_damage() {
        let valid = vec![7u8; 1000];
        let file = |tail: &[u8]| {
            let mut f = valid.clone();
            f.extend_from_slice(tail);
            f.resize(8192, 0);
            f
        };
        let body: Vec<u8> = (1..=700u32).map(|i| (i % 251 + 1) as u8).collect();
        let whole = record(&body);

        // Written whole but failing its checksum (a flipped bit): damage, refused.
        let mut flipped = whole.clone();
        flipped[300] ^= 0x10;
        assert!(!is_torn_tail(&file(&flipped), 1000));

        // Its second sector never reached the disk: a torn write.
        let mut cut = whole.clone();
        cut[24..].fill(0);
        assert!(is_torn_tail(&file(&cut), 1000));

        // Nothing of it reached the disk.
        assert!(is_torn_tail(&file(&[]), 1000));

        // Torn, but data follows it: damage, refused.
        let mut followed = cut.clone();
        followed.extend_from_slice(&[0u8; 600]);
        followed.extend_from_slice(&[9u8; 40]);
        assert!(!is_torn_tail(&file(&followed), 1000));

        // A header whose length is garbage, in a sector that holds data: damage.
        let mut garbage = whole.clone();
        garbage[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(!is_torn_tail(&file(&garbage), 1000));
    }

    #[test]
    fn test_log_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = LogStore::open(dir.path()).unwrap();
            let hs = HardState {
                term: 3,
                commit: 2,
                ..Default::default()
            };
            let first = [entry(1, 1), entry(2, 1), entry(3, 2)];
            log.append(&first, Some(&hs), true).unwrap();
            // A conflicting append truncates the tail.
            log.append(&[entry(3, 3)], None, true).unwrap();
        }
        let log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.hard_state().unwrap().term, 3);
        let es = log.entries_from(2).unwrap();
        assert_eq!(
            es.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            vec![(2, 1), (3, 3)]
        );
    }

    #[test]
    fn test_reset_to_snapshot_drops_entries_keeps_hard_state() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        log.append(&[entry(1, 1), entry(2, 1)], None, true).unwrap();
        let hs = HardState {
            term: 5,
            commit: 10,
            ..Default::default()
        };
        log.reset_to_snapshot(&hs).unwrap();
        log.append(&[entry(11, 5)], None, true).unwrap();
        drop(log);
        let log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.hard_state().unwrap().commit, 10);
        assert_eq!(log.entries_from(11).unwrap().len(), 1);
    }

    #[test]
    fn test_streamed_snapshot_matches_encoded_one() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = SnapshotDir::open(dir.path()).unwrap();
        let mut sm = StateMachine::default();
        sm.applied_index = 9;
        sm.applied_term = 3;
        snaps.save(&sm.encode(), 8).unwrap();
        snaps.save_state(&sm).unwrap();
        let read = |i: u64| fs::read(dir.path().join(format!("{i:020}.snap"))).unwrap();
        assert_eq!(read(8), read(9));
        assert_eq!(snaps.load_latest().unwrap().unwrap(), sm);
    }

    #[test]
    fn test_snapshot_file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = SnapshotDir::open(dir.path()).unwrap();
        assert!(snaps.load_latest().unwrap().is_none());
        let mut sm = StateMachine::default();
        sm.applied_index = 7;
        sm.applied_term = 2;
        snaps.save(&sm.encode(), 7).unwrap();
        assert_eq!(snaps.load_latest().unwrap().unwrap(), sm);

        let path = dir.path().join(format!("{:020}.snap", 7));
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x55;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            snaps.load_latest(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
