//! The micro-VM guest image built from the cached Debian kernel (`make kernel`): it holds the
//! agent as /init and the virtio and vsock modules, the build is reproducible, and a second
//! build comes from the cache. Without the kernel cache the test says why it did not run.

mod common;

use std::io::Read;
use std::path::PathBuf;

use podvisor_sandbox::initramfs::{self, GUEST_MODULES};

fn kernel_cache() -> PathBuf {
    let base = std::env::var_os("PODVISOR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/podvisor")
        });
    base.join("kernel")
}

#[test]
fn guest_image_holds_the_agent_and_virtio_modules_and_is_reproducible() {
    let modules = kernel_cache().join("modules");
    if !modules.is_dir() {
        eprintln!(
            "skipped: no kernel cache at {} (run `make kernel`)",
            modules.display()
        );
        return;
    }
    let agent = common::agent();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = initramfs::build(&agent, &modules, GUEST_MODULES, a.path()).unwrap();
    let second = initramfs::build(&agent, &modules, GUEST_MODULES, b.path()).unwrap();
    assert!(first.built);
    assert_eq!(
        std::fs::read(&first.path).unwrap(),
        std::fs::read(&second.path).unwrap()
    );
    let cached = initramfs::build(&agent, &modules, GUEST_MODULES, a.path()).unwrap();
    assert!(!cached.built && cached.path == first.path);

    for m in [
        "virtio_mmio.ko",
        "virtio_blk.ko",
        "virtio_net.ko",
        "vmw_vsock_virtio_transport.ko",
    ] {
        assert!(
            first.modules.iter().any(|x| x == m),
            "{m} missing from {:?}",
            first.modules
        );
    }
    let pos = |m: &str| first.modules.iter().position(|x| x == m).unwrap();
    assert!(pos("virtio.ko") < pos("virtio_mmio.ko"));
    assert!(pos("vsock.ko") < pos("vmw_vsock_virtio_transport.ko"));

    let mut cpio = Vec::new();
    let gz = std::fs::read(&first.path).unwrap();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut cpio)
        .unwrap();
    let agent_bytes = std::fs::read(&agent).unwrap();
    let at = cpio
        .windows(5)
        .position(|w| w == b"init\0")
        .expect("/init entry");
    assert!(
        cpio[at..].windows(64).any(|w| w == &agent_bytes[..64]),
        "agent is /init"
    );
}
