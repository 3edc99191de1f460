//! Bad input gets a clear error and leaves the host untouched: a missing image, a corrupt layer,
//! layer entries escaping the rootfs, an unknown protocol version, and a backend the host
//! cannot run.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use podvisor_agent::protocol::ProtocolError;
use podvisor_sandbox::image::ImageError;
use podvisor_sandbox::{
    ContainerConfig, GuestConfig, ImageSource, Isolation, Sandbox, SandboxConfig, SandboxError,
};

fn image_error(sb: &Sandbox, name: &str, image: ImageSource) -> ImageError {
    let c = ContainerConfig::new(name, image);
    match sb.create_container(&c) {
        Err(SandboxError::Image { container, source }) => {
            assert_eq!(container, name);
            source
        }
        other => panic!("expected an image error, got {other:?}"),
    }
}

fn layout_with(name: &str, layer: Vec<u8>) -> ImageSource {
    let dir = write_layout(&scratch().join(name), &[busybox_layer(), gzip(&layer)]);
    ImageSource::OciLayout {
        dir,
        reference: None,
    }
}

fn assert_no_root_left(sb: &Sandbox, name: &str) {
    let root = sb.dir().join("rootfs").join(name);
    assert!(
        !root.exists(),
        "partial root {} left behind",
        root.display()
    );
}

#[test]
fn missing_image_is_a_clear_error() {
    let sb = sandbox("bad-missing");
    let missing = scratch().join("no-such-layout");
    let err = image_error(
        &sb,
        "c",
        ImageSource::OciLayout {
            dir: missing.clone(),
            reference: None,
        },
    );
    assert!(
        matches!(&err, ImageError::NotFound { path } if path == &missing),
        "{err}"
    );
    assert!(err.to_string().contains("not found"), "{err}");

    let err = image_error(&sb, "d", ImageSource::Rootfs(missing.clone()));
    assert!(matches!(err, ImageError::NotFound { .. }));
    assert!(!missing.exists());
    sb.destroy().unwrap();
}

#[test]
fn corrupt_layer_is_detected_by_its_digest() {
    let sb = sandbox("bad-corrupt");
    let dir = write_layout(&scratch().join("corrupt-oci"), &[busybox_layer()]);
    // Flip one byte in the middle of the (only, largest) layer blob.
    let blobs = dir.join("blobs/sha256");
    let layer = fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut data = fs::read(&layer).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&layer, data).unwrap();

    let err = image_error(
        &sb,
        "c",
        ImageSource::OciLayout {
            dir,
            reference: None,
        },
    );
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("is corrupt"), "{err}");
    assert_no_root_left(&sb, "c");
    sb.destroy().unwrap();
}

#[test]
fn dot_dot_entry_escaping_the_rootfs_is_refused() {
    let sb = sandbox("bad-dotdot");
    let victim = format!("podvisor-escape-{}", std::process::id());
    let entry = format!("../../../../../../../../tmp/{victim}");
    let layer = tar_layer(&[Entry::File(&entry, b"pwned", 0o644)]);
    let err = image_error(&sb, "c", layout_with("dotdot-oci", layer));
    assert!(matches!(&err, ImageError::Escape { .. }), "{err}");
    assert!(err.to_string().contains("escapes the rootfs"), "{err}");
    assert!(
        !Path::new("/tmp").join(&victim).exists(),
        "the host was written to"
    );
    assert_no_root_left(&sb, "c");
    sb.destroy().unwrap();
}

#[test]
fn absolute_symlink_in_a_layer_cannot_be_written_through() {
    let sb = sandbox("bad-symlink");
    let outside = scratch().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let target = outside.display().to_string();
    let layer = tar_layer(&[
        Entry::Symlink("evil", &target),
        Entry::File("evil/pwned", b"pwned", 0o644),
    ]);
    let err = image_error(&sb, "c", layout_with("symlink-oci", layer));
    assert!(matches!(&err, ImageError::Escape { .. }), "{err}");
    assert!(err.to_string().contains("absolute symlink"), "{err}");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "the host was written to"
    );

    // A relative symlink that climbs out is refused the same way.
    let layer = tar_layer(&[
        Entry::Symlink("up", "../../../../.."),
        Entry::File("up/tmp/pwned", b"pwned", 0o644),
    ]);
    let err = image_error(&sb, "d", layout_with("climb-oci", layer));
    assert!(matches!(&err, ImageError::Escape { .. }), "{err}");
    assert!(!Path::new("/tmp/pwned").exists());
    assert_no_root_left(&sb, "d");
    sb.destroy().unwrap();
}

#[test]
fn unknown_protocol_version_is_a_clear_error() {
    let config = SandboxConfig::new("bad-version", Isolation::Namespaces, state_dir(), agent());
    let err = Sandbox::create_with_version(config, 99)
        .map(drop)
        .unwrap_err();
    match &err {
        SandboxError::Protocol(ProtocolError::VersionMismatch {
            ours: 99,
            theirs: 1,
        }) => {}
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    let text = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(
        text,
        "protocol version mismatch: this side speaks 99, the peer speaks 1"
    );
    assert!(
        !state_dir().join("bad-version").exists(),
        "sandbox state left behind"
    );
}

#[test]
fn micro_vm_backend_is_refused_with_a_reason_where_the_host_cannot_run_it() {
    let mut config = SandboxConfig::new("vm", Isolation::MicroVm, state_dir(), agent());
    config.guest = Some(GuestConfig {
        kernel: scratch().join("no-kernel"),
        initramfs: scratch().join("no-initramfs"),
        modules: Vec::new(),
        vcpus: 1,
        memory_mib: 128,
    });
    let err = Sandbox::create(config).map(drop).unwrap_err();
    let SandboxError::Refused {
        isolation: Isolation::MicroVm,
        reason,
    } = &err
    else {
        panic!("expected a refusal, got {err:?}");
    };
    // This host has no hardware-assisted KVM; a host that has it still lacks the guest image
    // here, and the VMM lacks vsock.
    assert!(
        reason.contains("hardware-assisted")
            || reason.contains("/dev/kvm")
            || reason.contains("missing"),
        "{reason}"
    );
    eprintln!("refused as expected: {err}");
    let text = err.to_string();
    assert!(
        text.starts_with("micro-VM sandboxes cannot run on this host: "),
        "{text}"
    );
    assert!(!state_dir().join("vm").exists());

    let ns = SandboxConfig::new("ns", Isolation::Namespaces, state_dir(), agent());
    Sandbox::check_host(&ns).expect("this host runs namespace sandboxes");
}
