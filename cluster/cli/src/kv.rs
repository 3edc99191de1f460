//! `podvisor kv`: the raw store, the way etcdctl shows it.
//!
//! `get` prints each key and value on lines of their own, `put` prints `OK`, `del` the number
//! of keys deleted, and `watch` each event as `PUT`/`DELETE`, the key and the value.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use podvisor_store::Client;
use podvisor_store::api::{EventKind, KeyRange, RangeRequest, WatchRequest};

use crate::error::{CliError, Result};

/// `podvisor kv`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  podvisor kv put /demo/greeting hello\n  \
    podvisor kv get /registry/ --prefix --keys-only\n  podvisor kv watch /demo/ --prefix")]
pub struct KvArgs {
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Debug, Subcommand)]
enum KvCommand {
    /// Print a key's value, or every key under a prefix.
    #[command(after_help = "Example:\n  podvisor kv get /registry/pods/ --prefix --keys-only")]
    Get {
        /// The key (or prefix).
        key: String,
        /// Every key that starts with KEY.
        #[arg(long)]
        prefix: bool,
        /// Print the keys only.
        #[arg(long)]
        keys_only: bool,
        /// At most this many keys (0: no limit).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Write a value.
    #[command(after_help = "Example:\n  podvisor kv put /demo/greeting hello")]
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete a key, or every key under a prefix.
    #[command(after_help = "Example:\n  podvisor kv del /demo/ --prefix")]
    Del {
        /// The key (or prefix).
        key: String,
        /// Every key that starts with KEY.
        #[arg(long)]
        prefix: bool,
    },
    /// Print changes to a key, or under a prefix, as they happen.
    #[command(after_help = "Example:\n  podvisor kv watch /demo/ --prefix --rev 1")]
    Watch {
        /// The key (or prefix).
        key: String,
        /// Every key that starts with KEY.
        #[arg(long)]
        prefix: bool,
        /// Start at this revision (0: changes from now on).
        #[arg(long, default_value_t = 0)]
        rev: u64,
        /// Stop after this many events (0: run until interrupted).
        #[arg(long, default_value_t = 0)]
        count: usize,
        /// Stop after this long without reaching `--count`, with an error.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
    },
}

fn range(key: &str, prefix: bool) -> KeyRange {
    if prefix {
        KeyRange::prefix(key.as_bytes())
    } else {
        KeyRange::key(key.as_bytes())
    }
}

/// Runs a `kv` subcommand.
///
/// # Errors
/// Store failures; a missing key for `get` without `--prefix`; a watch that times out.
pub fn run(client: &Client, args: &KvArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e| CliError::io("writing to stdout", e);
    match &args.command {
        KvCommand::Get {
            key,
            prefix,
            keys_only,
            limit,
        } => {
            let resp = client.range(RangeRequest {
                range: range(key, *prefix),
                limit: *limit,
                ..RangeRequest::default()
            })?;
            if resp.kvs.is_empty() && !prefix {
                return Err(CliError::Failed(format!("key {key:?} not found")));
            }
            for kv in resp.kvs {
                writeln!(out, "{}", String::from_utf8_lossy(&kv.key)).map_err(io)?;
                if !keys_only {
                    writeln!(out, "{}", String::from_utf8_lossy(&kv.value)).map_err(io)?;
                }
            }
        }
        KvCommand::Put { key, value } => {
            client.put(key.as_bytes(), value.as_bytes())?;
            writeln!(out, "OK").map_err(io)?;
        }
        KvCommand::Del { key, prefix } => {
            let resp = client.delete_range(range(key, *prefix))?;
            writeln!(out, "{}", resp.deleted).map_err(io)?;
        }
        KvCommand::Watch {
            key,
            prefix,
            rev,
            count,
            timeout,
        } => {
            let mut watcher = client.watch(WatchRequest {
                range: range(key, *prefix),
                start_revision: *rev,
                ..WatchRequest::default()
            })?;
            let deadline = timeout.map(|t| Instant::now() + t);
            let mut seen = 0usize;
            loop {
                let wait = deadline.map_or(Duration::from_secs(3600), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                if wait.is_zero() {
                    return Err(CliError::Timeout(format!(
                        "{seen} of {count} events within {}",
                        humantime::format_duration(timeout.unwrap_or_default())
                    )));
                }
                let Some(batch) = watcher.recv_timeout(wait)? else {
                    continue;
                };
                for ev in batch.events {
                    let kind = match ev.kind {
                        EventKind::Put => "PUT",
                        EventKind::Delete => "DELETE",
                    };
                    writeln!(out, "{kind}\n{}", String::from_utf8_lossy(&ev.kv.key)).map_err(io)?;
                    if ev.kind == EventKind::Put {
                        writeln!(out, "{}", String::from_utf8_lossy(&ev.kv.value)).map_err(io)?;
                    }
                    out.flush().map_err(io)?;
                    seen += 1;
                    if *count > 0 && seen >= *count {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}
