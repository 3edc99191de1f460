//! Runs one podvisor master.
//!
//! ```text
//! podvisor-master --id 1 --cluster-id 7 --data-dir /var/lib/podvisor/m1 \
//!     --member 1=127.0.0.1:2380,127.0.0.1:2379 \
//!     --member 2=127.0.0.1:2480,127.0.0.1:2479 \
//!     --member 3=127.0.0.1:2580,127.0.0.1:2579
//! ```
//!
//! Each `--member ID=PEER_ADDR,CLIENT_ADDR` names one master; this one listens on its own
//! addresses, or on `--listen-peer ADDR` and `--listen-client ADDR` where those differ (a
//! wildcard address, say, while the members dial the advertised ones). `--join` starts an
//! empty master that waits for the leader (after `member_add_learner`). `--snapshot-entries N`
//! sets the snapshot interval and `--fault-injection` enables the test-only partition request.
//! The process runs until it is killed, or exits with status 1 when its data directory fails
//! its checks or its raft loop stops on a fatal condition.

use std::process::ExitCode;

use podvisor_store::api::Member;
use podvisor_store::{Master, MasterConfig};

fn parse() -> Result<MasterConfig, String> {
    let mut args = std::env::args().skip(1);
    let (mut id, mut cluster_id, mut data_dir) = (None, 1u64, None);
    let mut members = Vec::new();
    let (mut join, mut faults, mut snap) = (false, false, None);
    let (mut listen_peer, mut listen_client) = (None, None);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--id" => {
                id = Some(
                    val("--id")?
                        .parse::<u64>()
                        .map_err(|e| format!("--id: {e}"))?,
                )
            }
            "--cluster-id" => {
                cluster_id = val("--cluster-id")?
                    .parse()
                    .map_err(|e| format!("--cluster-id: {e}"))?
            }
            "--data-dir" => data_dir = Some(val("--data-dir")?),
            "--member" => {
                let v = val("--member")?;
                let (mid, addrs) = v
                    .split_once('=')
                    .ok_or(format!("--member {v}: expected ID=PEER,CLIENT"))?;
                let (peer, client) = addrs
                    .split_once(',')
                    .ok_or(format!("--member {v}: expected ID=PEER,CLIENT"))?;
                members.push(Member {
                    id: mid.parse().map_err(|e| format!("--member {v}: {e}"))?,
                    peer_addr: peer.to_string(),
                    client_addr: client.to_string(),
                    learner: false,
                });
            }
            "--listen-peer" => listen_peer = Some(val("--listen-peer")?),
            "--listen-client" => listen_client = Some(val("--listen-client")?),
            "--join" => join = true,
            "--fault-injection" => faults = true,
            "--snapshot-entries" => {
                snap = Some(
                    val("--snapshot-entries")?
                        .parse::<u64>()
                        .map_err(|e| e.to_string())?,
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    let data_dir = data_dir.ok_or("--data-dir is required")?;
    let mut cfg = MasterConfig::new(id, cluster_id, data_dir, members);
    cfg.join = join;
    cfg.fault_injection = faults;
    cfg.peer_listen = listen_peer;
    cfg.client_listen = listen_client;
    if let Some(n) = snap {
        cfg.snapshot_entries = n;
        cfg.snapshot_trail = n / 5;
    }
    Ok(cfg)
}

const USAGE: &str =
    "usage: podvisor-master --id ID --data-dir DIR --member ID=PEER_ADDR,CLIENT_ADDR...
                       [--cluster-id N] [--listen-peer ADDR] [--listen-client ADDR]
                       [--join] [--snapshot-entries N]

Runs one master of podvisor's replicated store. Give one --member for each master, this one
included. Example:
  podvisor-master --id 1 --cluster-id 7 --data-dir /var/lib/podvisor/m1 \\
      --member 1=127.0.0.1:2380,127.0.0.1:2379 \\
      --member 2=127.0.0.1:2480,127.0.0.1:2479 \\
      --member 3=127.0.0.1:2580,127.0.0.1:2579";

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("podvisor-master: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let id = cfg.id;
    let master = match Master::start(cfg) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("podvisor-master {id}: cannot start: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "podvisor-master {id}: serving clients on {}",
        master.client_addr()
    );
    match master.wait() {
        Some(failure) => {
            eprintln!("podvisor-master {id}: stopped: {failure}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}
