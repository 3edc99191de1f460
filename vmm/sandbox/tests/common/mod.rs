//! Shared by the sandbox tests: a small OCI image layout built from Debian's busybox-static,
//! the agent binary, and helpers to run a container and collect what it does.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use podvisor_sandbox::{
    ContainerConfig, ExitStatus, ImageSource, Isolation, ProcessEvent, ProcessRef, Sandbox,
    SandboxConfig, Stream,
};
use sha2::{Digest, Sha256};

/// Applets linked in the test image.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "true", "false", "sleep", "httpd", "wget", "head", "tr", "kill", "ps",
    "hostname", "id", "pwd", "env", "yes", "seq", "wc", "mkdir", "touch", "ls", "grep", "tee",
];

/// The agent binary: `PODVISOR_AGENT`, else the one cargo built next to the tests.
pub fn agent() -> PathBuf {
    if let Ok(p) = std::env::var("PODVISOR_AGENT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let agent = dir.join("podvisor-agent");
    assert!(
        agent.is_file(),
        "agent binary {} missing; set PODVISOR_AGENT",
        agent.display()
    );
    agent
}

/// A directory that lives as long as the test process.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("podvisor-test-")
            .tempdir()
            .unwrap()
    })
    .path()
}

/// Where sandboxes of the tests keep their state.
pub fn state_dir() -> PathBuf {
    scratch().join("state")
}

pub fn blob(layout: &Path, data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), data).unwrap();
    format!("sha256:{hex}")
}

/// A tar entry written with a raw name, so tests can build archives tar::Builder refuses.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
}

pub fn tar_layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data, kind, mode, link): (&str, &[u8], _, u32, Option<&str>) = match e {
            Entry::Dir(n) => (n, &[], tar::EntryType::Directory, 0o755, None),
            Entry::File(n, d, m) => (n, d, tar::EntryType::Regular, *m, None),
            Entry::Symlink(n, t) => (n, &[], tar::EntryType::Symlink, 0o777, Some(t)),
        };
        let raw = &mut h.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link {
            let l = &mut h.as_old_mut().linkname;
            l.fill(0);
            l[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Writes an OCI image layout with the given gzip layers; returns its directory.
pub fn write_layout(dir: &Path, layers: &[Vec<u8>]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [] }
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = blob(dir, &config);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": blob(dir, l), "size": l.len()
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest, "size": config.len() },
        "layers": layer_descs
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest, "size": manifest.len(),
                        "annotations": { "org.opencontainers.image.ref.name": "latest" } }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_owned()
}

/// The busybox root layer's entries.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static at /bin/busybox");
    let mut entries = vec![
        Entry::Dir("bin/"),
        Entry::Dir("etc/"),
        Entry::Dir("proc/"),
        Entry::Dir("dev/"),
        Entry::Dir("sys/"),
        Entry::Dir("tmp/"),
        Entry::Dir("var/"),
        Entry::Dir("var/www/"),
        Entry::File("bin/busybox", &busybox, 0o755),
        Entry::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n",
            0o644,
        ),
        Entry::File("etc/group", b"root:x:0:\nwww:x:33:\n", 0o644),
        Entry::File("var/www/index.html", b"hello from a podvisor pod\n", 0o644),
    ];
    let names: Vec<String> = APPLETS.iter().map(|a| format!("bin/{a}")).collect();
    for n in &names {
        entries.push(Entry::Symlink(n, "/bin/busybox"));
    }
    gzip(&tar_layer(&entries))
}

/// The shared busybox OCI layout.
pub fn busybox_image() -> ImageSource {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    let dir =
        LAYOUT.get_or_init(|| write_layout(&scratch().join("busybox-oci"), &[busybox_layer()]));
    ImageSource::OciLayout {
        dir: dir.clone(),
        reference: Some("latest".into()),
    }
}

/// A fresh namespace sandbox named `id`.
pub fn sandbox(id: &str) -> Sandbox {
    Sandbox::create(SandboxConfig::new(
        id,
        Isolation::Namespaces,
        state_dir(),
        agent(),
    ))
    .expect("namespace sandbox")
}

/// A busybox container config running `args`.
pub fn container(name: &str, args: &[&str]) -> ContainerConfig {
    let mut c = ContainerConfig::new(name, busybox_image());
    c.process.args = args.iter().map(|s| s.to_string()).collect();
    c
}

/// Everything a process did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Option<ExitStatus>,
}

impl Outcome {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Collects events until the process exits (or `timeout` passes).
pub fn collect(rx: &Receiver<ProcessEvent>, timeout: Duration) -> Outcome {
    let mut out = Outcome::default();
    let deadline = std::time::Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(ProcessEvent::Output(Stream::Stdout, d)) => out.stdout.extend(d),
            Ok(ProcessEvent::Output(Stream::Stderr, d)) => out.stderr.extend(d),
            Ok(ProcessEvent::Exited(s)) => {
                out.status = Some(s);
                break;
            }
            Err(_) => break,
        }
    }
    out
}

/// Waits until the process has written `needle` to stdout; returns what it wrote so far.
pub fn wait_for_output(rx: &Receiver<ProcessEvent>, needle: &str, timeout: Duration) -> String {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(ProcessEvent::Output(_, d)) => {
                seen.extend(d);
                if String::from_utf8_lossy(&seen).contains(needle) {
                    break;
                }
            }
            Ok(ProcessEvent::Exited(s)) => panic!("exited with {s:?} before writing {needle:?}"),
            Err(_) => panic!(
                "no {needle:?} within {timeout:?}; saw {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Runs one container to its end in a new sandbox.
pub fn run_once(id: &str, config: &ContainerConfig) -> Outcome {
    let sb = sandbox(id);
    let rx = sb.subscribe(&ProcessRef::main(&config.name));
    sb.create_container(config).expect("create container");
    sb.start(&config.name).expect("start container");
    let out = collect(&rx, Duration::from_secs(60));
    sb.destroy().expect("destroy sandbox");
    out
}
