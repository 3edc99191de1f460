//! Bad input: malformed peer messages, a wrong cluster id, corrupt files. Each gets a clear,
//! typed error; the master neither panics nor accepts the bad data.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Cluster;
use podvisor_store::api::Member;
use podvisor_store::wire::{self, PEER_MAGIC, PeerHello, PeerHelloReply};
use podvisor_store::{Client, ClientConfig, Master, StoreError};
use protobuf::Message as _;
use raft::eraftpb::{Entry, Message, MessageType};

/// Opens a peer connection as member `from`.
fn hello_from(stream: &mut TcpStream, cluster_id: u64, from: u64, to: u64) -> PeerHelloReply {
    let h = PeerHello {
        magic: PEER_MAGIC,
        cluster_id,
        from,
        to,
    };
    let mut buf = Vec::new();
    wire::write_frame(&mut buf, &wire::encode(&h)).unwrap();
    stream.write_all(&buf).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let frame = wire::read_frame(stream, "test").unwrap().expect("a reply");
    wire::decode(&frame, "test").unwrap()
}

/// Opens a peer connection as member 2, a member of every test cluster.
fn hello(stream: &mut TcpStream, cluster_id: u64, to: u64) -> PeerHelloReply {
    hello_from(stream, cluster_id, 2, to)
}

/// The newest raft-engine log file under `log_dir`, the one whose tail a crash can hit.
fn newest_raft_log(log_dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(log_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "raftlog"))
        .max()
        .unwrap()
}

fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    matches!(stream.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn malformed_peer_messages_close_the_connection_and_the_master_keeps_serving() {
    let c = Cluster::start(3);
    let peer = c.members[0].peer_addr.clone();

    // Garbage instead of a hello.
    let mut s = TcpStream::connect(&peer).unwrap();
    s.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    assert!(closed(&mut s));

    // A good hello, then a frame with a bad checksum.
    let mut s = TcpStream::connect(&peer).unwrap();
    assert_eq!(hello(&mut s, 42, 1), PeerHelloReply::Accepted);
    let mut frame = Vec::new();
    wire::write_frame(&mut frame, b"not a raft message").unwrap();
    frame[5] ^= 0xff;
    s.write_all(&frame).unwrap();
    assert!(closed(&mut s));

    // A good hello, then a well-framed payload that is not a raft message.
    let mut s = TcpStream::connect(&peer).unwrap();
    assert_eq!(hello(&mut s, 42, 1), PeerHelloReply::Accepted);
    let mut frame = Vec::new();
    wire::write_frame(&mut frame, &[0xff; 64]).unwrap();
    s.write_all(&frame).unwrap();
    assert!(closed(&mut s));

    // A hello addressed to another member.
    let mut s = TcpStream::connect(&peer).unwrap();
    assert!(matches!(hello(&mut s, 42, 7), PeerHelloReply::Refused(_)));

    // A hello from an id that is not a member.
    let mut s = TcpStream::connect(&peer).unwrap();
    match hello_from(&mut s, 42, 99, 1) {
        PeerHelloReply::Refused(why) => assert!(why.contains("not a member"), "{why}"),
        other => panic!("accepted a hello from a non-member: {other:?}"),
    }

    // Garbage on the client port gets an error reply, not a crash.
    let mut s = TcpStream::connect(&c.members[0].client_addr).unwrap();
    let mut frame = Vec::new();
    wire::write_frame(&mut frame, &[0xff; 32]).unwrap();
    s.write_all(&frame).unwrap();
    let reply = wire::read_frame(&mut s, "test").unwrap().unwrap();
    let reply: wire::ClientResponse = wire::decode(&reply, "test").unwrap();
    assert!(matches!(reply, Err(wire::ErrorReply::Invalid(_))));

    let client = c.client();
    client.put("still", "serving").unwrap();
    assert_eq!(client.get("still").unwrap().unwrap().value, b"serving");
    for id in 1..=3 {
        assert!(c.master(id).failure().is_none());
    }
}

/// Sends raft messages over an accepted peer connection as member 2.
fn send_as_member_2(peer: &str, to: u64, msgs: &[Message]) {
    let mut s = TcpStream::connect(peer).unwrap();
    assert_eq!(hello(&mut s, 42, to), PeerHelloReply::Accepted);
    let mut buf = Vec::new();
    for m in msgs {
        wire::write_frame(&mut buf, &m.write_to_bytes().unwrap()).unwrap();
    }
    s.write_all(&buf).unwrap();
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn impossible_raft_messages_are_refused_and_the_master_keeps_serving() {
    let c = Cluster::start(3);
    let client = c.client();
    client.put("before", "v").unwrap();
    let st = c.master(1).status();
    let term = st.term;

    // Messages raft-rs would give up on: a heartbeat that commits past the end of the log, an
    // append that rewrites committed entries, an acknowledgement of entries that do not exist.
    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.from = 2;
    heartbeat.to = 1;
    heartbeat.term = term + 5;
    heartbeat.commit = st.commit_index + 1_000_000;

    let mut append = Message::default();
    append.set_msg_type(MessageType::MsgAppend);
    append.from = 2;
    append.to = 1;
    append.term = term + 5;
    append.index = 1;
    append.log_term = 1;
    let rewrite = Entry {
        index: 2,
        term: term + 5,
        ..Default::default()
    };
    append.mut_entries().push(rewrite);

    let mut ack = Message::default();
    ack.set_msg_type(MessageType::MsgAppendResponse);
    ack.from = 2;
    ack.to = 1;
    ack.term = term;
    ack.index = st.commit_index + 1_000_000;

    for id in 1..=3 {
        let peer = c.members[id as usize - 1].peer_addr.clone();
        let msgs: Vec<Message> = [&heartbeat, &append, &ack]
            .into_iter()
            .map(|m| {
                let mut m = m.clone();
                m.to = id;
                m
            })
            .collect();
        if id != 2 {
            send_as_member_2(&peer, id, &msgs);
        }
    }

    client.put("after", "v").unwrap();
    assert_eq!(client.get("before").unwrap().unwrap().value, b"v");
    for id in 1..=3 {
        assert!(
            c.master(id).failure().is_none(),
            "member {id} stopped: {:?}",
            c.master(id).failure()
        );
    }
}

#[test]
fn wrong_cluster_id_is_refused_by_peers_and_clients() {
    let c = Cluster::start(3);
    let mut s = TcpStream::connect(&c.members[1].peer_addr).unwrap();
    match hello(&mut s, 4242, 2) {
        PeerHelloReply::Refused(why) => assert!(why.contains("wrong cluster"), "{why}"),
        other => panic!("accepted a peer of another cluster: {other:?}"),
    }
    let mut cfg = ClientConfig::new(&[c.members[0].client_addr.clone()]);
    cfg.cluster_id = 4242;
    cfg.timeout = Duration::from_secs(3);
    let wrong = Client::with_config(cfg).unwrap();
    assert!(matches!(
        wrong.put("k", "v"),
        Err(StoreError::WrongCluster {
            expected: 42,
            got: 4242
        })
    ));
    assert!(c.client().get("k").unwrap().is_none());
}

#[test]
fn corrupt_log_tail_is_refused_with_a_typed_error() {
    let mut c = Cluster::start(3);
    let client = c.client();
    for i in 0..20 {
        client.put(format!("k{i}"), "v").unwrap();
    }
    // A large, incompressible last record spans several pages of the log file.
    let noise: Vec<u8> = (0..64 << 10).map(|_| rand::random::<u8>()).collect();
    client.put("big", noise).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.stop(1);

    let log_dir = c.dir.path().join("m1").join("log");
    let file = newest_raft_log(&log_dir);
    let mut bytes = std::fs::read(&file).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap();
    // Flip bytes inside the last record, well before its end.
    for b in &mut bytes[end - 40_000..end - 39_990] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();

    let cfg = common::config(c.dir.path(), 1, &c.members);
    let err = Master::start(cfg.clone())
        .err()
        .expect("a corrupt log must be refused");
    assert!(
        matches!(
            err,
            StoreError::Corrupt { .. } | StoreError::LogEngine { .. }
        ),
        "{err:?}"
    );
    // The refusal changed nothing: it is refused again.
    assert!(Master::start(cfg).is_err());
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}

#[test]
fn corrupt_small_last_record_is_refused_not_dropped_as_torn() {
    let mut c = Cluster::start(3);
    let client = c.client();
    for i in 0..20 {
        client.put(format!("k{i}"), "v").unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    c.stop(2);

    let log_dir = c.dir.path().join("m2").join("log");
    let file = newest_raft_log(&log_dir);
    let mut bytes = std::fs::read(&file).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap();
    // One flipped bit near the end of the last, small record: written whole, then damaged.
    bytes[end - 6] ^= 0x04;
    std::fs::write(&file, &bytes).unwrap();

    let cfg = common::config(c.dir.path(), 2, &c.members);
    let err = Master::start(cfg)
        .err()
        .expect("a damaged last record must be refused, not dropped as a torn write");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}

#[test]
fn corrupt_snapshot_is_refused_with_a_typed_error() {
    let mut c = Cluster::start(3);
    c.client().put("k", "v").unwrap();
    c.stop(2);
    let snap_dir = c.dir.path().join("m2").join("snap");
    let file = std::fs::read_dir(&snap_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let err = Master::start(common::config(c.dir.path(), 2, &c.members))
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn malformed_endpoints_are_refused_up_front() {
    for bad in [
        "not an address",
        "127.0.0.1:99999",
        "127.0.0.1:0",
        "[::1",
        "[::1]",
        ":2379",
        "host name:2379",
    ] {
        match Client::connect(&[bad]) {
            Err(StoreError::Config(why)) => assert!(why.contains(bad), "{why}"),
            Err(other) => panic!("{bad:?}: {other}"),
            Ok(_) => panic!("{bad:?} was accepted"),
        }
    }
    for good in [
        "127.0.0.1:2379",
        "localhost:2379",
        "[::1]:2379",
        "master-1.example:23790",
    ] {
        assert!(Client::connect(&[good]).is_ok(), "{good} was refused");
    }
}

#[test]
fn a_write_to_a_stopped_cluster_is_unavailable_not_of_unknown_outcome() {
    let mut c = Cluster::start(3);
    let client = common::client(&c.members, Duration::from_secs(2));
    client.put("k", "v").unwrap();
    for id in 1..=3 {
        c.stop(id);
    }
    // The connection the client holds was closed by its master; after a pause the client
    // notices before sending, so the write is known never to have left.
    std::thread::sleep(Duration::from_millis(1200));
    match client.put("k", "w") {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("a write to a stopped cluster gave {other:?}"),
    }
}

#[test]
fn a_data_directory_of_another_member_or_cluster_is_refused() {
    let mut c = Cluster::start(3);
    c.client().put("k", "v").unwrap();
    c.stop(3);
    let dir3 = c.dir.path().join("m3");
    // Member 2's config, pointed at member 3's data.
    let mut cfg = common::config(c.dir.path(), 2, &c.members);
    cfg.data_dir = dir3.clone();
    match Master::start(cfg) {
        Err(StoreError::Config(why)) => assert!(why.contains("member 3"), "{why}"),
        other => panic!("started on another member's data: {:?}", other.err()),
    }
    // Member 3 of another cluster.
    let mut cfg = common::config(c.dir.path(), 3, &c.members);
    cfg.cluster_id = 43;
    match Master::start(cfg) {
        Err(StoreError::Config(why)) => assert!(why.contains("cluster 0x2a"), "{why}"),
        other => panic!("started on another cluster's data: {:?}", other.err()),
    }
    // Its own config still starts.
    c.restart(3);
    assert_eq!(c.client().get("k").unwrap().unwrap().value, b"v");
}

#[test]
fn a_lost_raft_log_beside_a_snapshot_is_refused() {
    let mut c = Cluster::start_with(3, |cfg| {
        cfg.snapshot_entries = 20;
        cfg.snapshot_trail = 5;
    });
    let client = c.client();
    for i in 0..60 {
        client.put(format!("k{i}"), "v").unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    c.stop(3);
    std::fs::remove_dir_all(c.dir.path().join("m3").join("log")).unwrap();
    let mut cfg = common::config(c.dir.path(), 3, &c.members);
    (c.tune)(&mut cfg);
    match Master::start(cfg) {
        Err(StoreError::Corrupt { reason, .. }) => assert!(reason.contains("lost"), "{reason}"),
        other => panic!("started without its log: {:?}", other.err()),
    }
}

#[test]
fn member_lists_with_a_repeated_id_or_address_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let members = common::members(2);
    let twice_id = vec![
        members[0].clone(),
        Member {
            id: 1,
            ..members[1].clone()
        },
    ];
    let twice_addr = vec![
        members[0].clone(),
        Member {
            client_addr: members[0].client_addr.clone(),
            ..members[1].clone()
        },
    ];
    for (list, what) in [
        (twice_id, "listed more than once"),
        (twice_addr, "is given to"),
    ] {
        let cfg = podvisor_store::MasterConfig::new(1, 42, dir.path().join("m"), list);
        match Master::start(cfg) {
            Err(StoreError::Config(why)) => assert!(why.contains(what), "{why}"),
            other => panic!("accepted a bad member list: {:?}", other.err()),
        }
    }
    let cfg = podvisor_store::MasterConfig::new(1, 42, "", members);
    assert!(matches!(Master::start(cfg), Err(StoreError::Config(_))));
}

#[test]
fn closed_client_connections_are_let_go_and_oversized_requests_refused() {
    let c = Cluster::start(3);
    let leader = c.wait_leader(Duration::from_secs(5));
    let addr = c.members[leader as usize - 1].client_addr.clone();
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    for i in 0..60 {
        let client = Client::connect(std::slice::from_ref(&addr)).unwrap();
        client.put(format!("c{i}"), "v").unwrap();
    }
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while c.master(leader).open_client_connections() > 2 {
        assert!(
            std::time::Instant::now() < end,
            "{} client connections still held after their clients left",
            c.master(leader).open_client_connections()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The master gave the descriptors back, not only its count of them.
    assert!(
        fds() < before + 10,
        "{before} descriptors before, {} after",
        fds()
    );

    // A request over the limit is refused before it is sent, at once.
    let client = c.client();
    let started = std::time::Instant::now();
    let big = vec![7u8; wire::MAX_REQUEST + 1];
    match client.put("big", big) {
        Err(StoreError::InvalidRequest(why)) => assert!(why.contains("limit"), "{why}"),
        other => panic!("oversized put: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // Sent anyway, by hand: the master answers with an error and closes the connection.
    let mut s = TcpStream::connect(&addr).unwrap();
    let header = [
        ((wire::MAX_REQUEST + 1) as u32).to_le_bytes(),
        0u32.to_le_bytes(),
    ]
    .concat();
    s.write_all(&header).unwrap();
    let reply = wire::read_frame(&mut s, "test").unwrap().unwrap();
    let reply: wire::ClientResponse = wire::decode(&reply, "test").unwrap();
    assert!(
        matches!(reply, Err(wire::ErrorReply::Invalid(_))),
        "{reply:?}"
    );
    assert!(closed(&mut s));
    client.put("still", "serving").unwrap();
}
