//! The micro-VM guest image: a `newc` cpio archive, gzip-compressed, holding the static agent as
//! `/init` and the virtio and vsock modules of the cached guest kernel.
//!
//! Modules are found in the kernel's `modules/` tree by name. Their dependencies are read from
//! each module's own `.modinfo` (`depends=`), so the archive holds every module needed, flat under
//! `/lib/modules`, and the load order (dependencies first) goes on the kernel command line for the
//! agent to follow (see [`crate::GuestConfig::cmdline`]).
//!
//! The build is reproducible: entries are sorted, owned by root, dated at the epoch, and the gzip
//! header carries no time or name. It is cached: the output name is the SHA-256 of every input,
//! and an existing output is reused without rebuilding.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

/// Bumped whenever the archive layout changes, so old cached images are not reused.
const FORMAT_VERSION: &str = "podvisor-initramfs-1";

/// The modules a guest needs for the devices podvisor's VMM offers.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "virtio_rng",
    "vmw_vsock_virtio_transport",
];

/// Why the guest image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A wanted module (or one it depends on) is not in the kernel's tree.
    #[error("kernel module {name} not found under {dir}")]
    MissingModule {
        /// The module.
        name: String,
        /// The tree searched.
        dir: PathBuf,
    },
    /// Reading an input or writing the archive failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InitramfsError + '_ {
    move |source| InitramfsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A built guest image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initramfs {
    /// The archive.
    pub path: PathBuf,
    /// Module files in load order, for [`crate::GuestConfig::modules`].
    pub modules: Vec<String>,
    /// Whether it was built now (`false`: reused from the cache).
    pub built: bool,
}

/// Builds (or reuses) the guest image in `cache_dir` from the static `agent` and the modules
/// `wanted` (with their dependencies) of the kernel module tree `modules_dir`.
///
/// # Errors
///
/// [`InitramfsError::MissingModule`] when a module is not in the tree, or an I/O error.
pub fn build(
    agent: &Path,
    modules_dir: &Path,
    wanted: &[&str],
    cache_dir: &Path,
) -> Result<Initramfs, InitramfsError> {
    let index = index_modules(modules_dir)?;
    let (order, mut contents) = load_order(&index, wanted, modules_dir)?;

    let agent_bytes = fs::read(agent).map_err(io_err(agent))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut module_files = Vec::new();
    for name in &order {
        let file = format!("{name}.ko");
        let data = contents
            .remove(name)
            .expect("every ordered module was read");
        files.push((format!("lib/modules/{file}"), data));
        module_files.push(file);
    }

    let mut key = Sha256::new();
    key.update(FORMAT_VERSION);
    key.update(Sha256::digest(&agent_bytes));
    for (name, data) in &files {
        key.update(name.as_bytes());
        key.update(Sha256::digest(data));
    }
    let hex: String = key
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = cache_dir.join(format!("initramfs-{hex}.cpio.gz"));
    if out.is_file() {
        return Ok(Initramfs {
            path: out,
            modules: module_files,
            built: false,
        });
    }

    files.push(("init".into(), agent_bytes));
    let archive = cpio_gz(&files);
    fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    // Written aside and renamed, so a reader never sees half an image.
    let tmp = cache_dir.join(format!(".initramfs-{hex}.{}", std::process::id()));
    fs::write(&tmp, archive).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &out).map_err(io_err(&out))?;
    Ok(Initramfs {
        path: out,
        modules: module_files,
        built: true,
    })
}

/// Canonical module name: `-` and `_` are the same to the kernel.
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// Module name to file, for every module of the tree (files are read only when needed).
fn index_modules(dir: &Path) -> Result<BTreeMap<String, PathBuf>, InitramfsError> {
    let mut index = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(io_err(&d))?.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            } else if let Some(stem) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".ko"))
            {
                index.insert(canonical(stem), p);
            }
        }
    }
    Ok(index)
}

/// The `depends=` list of a module's `.modinfo`.
fn modinfo_depends(data: &[u8]) -> Vec<String> {
    let key = b"depends=";
    data.windows(key.len())
        .position(|w| w == key)
        .map(|at| {
            let rest = &data[at + key.len()..];
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end])
                .split(',')
                .filter(|s| !s.is_empty())
                .map(canonical)
                .collect()
        })
        .unwrap_or_default()
}

/// The modules read while ordering them, by name.
type Contents = BTreeMap<String, Vec<u8>>;

/// Dependencies first, each module once; returns the order and the modules' bytes.
fn load_order(
    index: &BTreeMap<String, PathBuf>,
    wanted: &[&str],
    dir: &Path,
) -> Result<(Vec<String>, Contents), InitramfsError> {
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        dir: &Path,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
        contents: &mut Contents,
    ) -> Result<(), InitramfsError> {
        if !seen.insert(name.to_owned()) {
            return Ok(());
        }
        let path = index
            .get(name)
            .ok_or_else(|| InitramfsError::MissingModule {
                name: name.to_owned(),
                dir: dir.to_owned(),
            })?;
        let data = fs::read(path).map_err(io_err(path))?;
        for d in modinfo_depends(&data) {
            visit(&d, index, dir, seen, order, contents)?;
        }
        contents.insert(name.to_owned(), data);
        order.push(name.to_owned());
        Ok(())
    }
    let (mut seen, mut order, mut contents) = (BTreeSet::new(), Vec::new(), Contents::new());
    for w in wanted {
        visit(
            &canonical(w),
            index,
            dir,
            &mut seen,
            &mut order,
            &mut contents,
        )?;
    }
    Ok((order, contents))
}

/// A gzip-compressed `newc` archive of `files` plus the directories and `/dev/console` the
/// kernel and the agent expect. Byte-for-byte the same for the same input.
fn cpio_gz(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut entries: BTreeMap<String, (u32, u32, &[u8])> = BTreeMap::new();
    for d in ["dev", "proc", "sys", "run", "tmp", "lib", "lib/modules"] {
        entries.insert(d.into(), (0o040_755, 0, &[]));
    }
    // The kernel opens /dev/console for /init before anything is mounted.
    entries.insert("dev/console".into(), (0o020_600, (5 << 8) | 1, &[]));
    for (name, data) in files {
        let mode = if name == "init" { 0o100_755 } else { 0o100_644 };
        entries.insert(name.clone(), (mode, 0, data));
    }

    let mut cpio = Vec::new();
    for (ino, (name, (mode, rdev, data))) in entries.iter().enumerate() {
        write_entry(&mut cpio, ino as u32 + 1, name, *mode, *rdev, data);
    }
    write_entry(&mut cpio, 0, "TRAILER!!!", 0, 0, &[]);

    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    gz.write_all(&cpio).expect("writing to memory cannot fail");
    gz.finish().expect("writing to memory cannot fail")
}

fn write_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: u32, data: &[u8]) {
    let nlink = if mode & 0o040_000 != 0 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // dev major
        0, // dev minor
        rdev >> 8,
        rdev & 0xff,
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_module(dir: &Path, name: &str, depends: &str) {
        let mut data = b"\x7fELF....".to_vec();
        data.extend_from_slice(format!("license=GPL\0depends={depends}\0name={name}\0").as_bytes());
        fs::write(dir.join(format!("{name}.ko")), data).unwrap();
    }

    fn fake_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("kernel/drivers/virtio");
        fs::create_dir_all(&d).unwrap();
        fake_module(&d, "virtio", "");
        fake_module(&d, "virtio_ring", "");
        fake_module(&d, "virtio_mmio", "virtio,virtio_ring");
        let n = t.path().join("kernel/net/vmw_vsock");
        fs::create_dir_all(&n).unwrap();
        fake_module(&n, "vsock", "");
        fake_module(
            &n,
            "vmw_vsock_virtio_transport_common",
            "vsock,virtio,virtio_ring",
        );
        fake_module(
            &n,
            "vmw_vsock_virtio_transport",
            "vmw_vsock_virtio_transport_common,vsock,virtio,virtio_ring",
        );
        t
    }

    #[test]
    fn test_build_is_reproducible_cached_and_orders_dependencies_first() {
        let tree = fake_tree();
        let agent = tree.path().join("agent");
        fs::write(&agent, b"#!agent").unwrap();
        let wanted = ["virtio_mmio", "vmw_vsock_virtio_transport"];
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

        let first = build(&agent, tree.path(), &wanted, a.path()).unwrap();
        let second = build(&agent, tree.path(), &wanted, b.path()).unwrap();
        assert!(first.built && second.built);
        assert_eq!(
            fs::read(&first.path).unwrap(),
            fs::read(&second.path).unwrap()
        );
        assert_eq!(
            first.modules,
            [
                "virtio.ko",
                "virtio_ring.ko",
                "virtio_mmio.ko",
                "vsock.ko",
                "vmw_vsock_virtio_transport_common.ko",
                "vmw_vsock_virtio_transport.ko",
            ]
        );

        let again = build(&agent, tree.path(), &wanted, a.path()).unwrap();
        assert!(!again.built);
        assert_eq!(again.path, first.path);

        fs::write(&agent, b"#!agent v2").unwrap();
        let changed = build(&agent, tree.path(), &wanted, a.path()).unwrap();
        assert!(changed.built);
        assert_ne!(changed.path, first.path);
    }

    #[test]
    fn test_build_fails_when_a_module_is_missing() {
        let tree = fake_tree();
        let agent = tree.path().join("agent");
        fs::write(&agent, b"#!agent").unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = build(&agent, tree.path(), &["virtio_blk"], out.path()).unwrap_err();
        assert!(
            matches!(err, InitramfsError::MissingModule { ref name, .. } if name == "virtio_blk")
        );
    }

    #[test]
    fn test_cpio_holds_init_and_console() {
        let gz = cpio_gz(&[("init".into(), b"agent".to_vec())]);
        let mut cpio = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut cpio).unwrap();
        let text = String::from_utf8_lossy(&cpio);
        assert!(text.starts_with("070701"));
        assert!(
            text.contains("dev/console\0")
                && text.contains("init\0")
                && text.contains("TRAILER!!!\0")
        );
    }
}
