//! Every input `Vm::start` refuses, with the error naming it, and no thread or fd left behind.
//!
//! The tests of this file run one at a time (a lock), so the fd count of the process only
//! moves with the VM under test; leaked threads are found by their `vcpuN` names.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use podvisor_vmm::{BootError, ConfigError, KvmError, Vm, VmConfig, VmError};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Open fds of this process, and its threads named like vCPU threads.
fn resources() -> (usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let vcpu_threads = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|comm| comm.starts_with("vcpu"))
                .count()
        })
        .unwrap_or(0);
    (fds, vcpu_threads)
}

/// Holds every other test of this file off, so fd counts move only with the test's own VM.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits until `want` vCPU threads run (a new thread names itself once it runs).
fn wait_for_vcpu_threads(want: usize) -> usize {
    for _ in 0..100 {
        if resources().1 == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    resources().1
}

/// Starts `config`, expects it to fail, checks nothing leaked, and returns the error.
fn start_fails(config: VmConfig) -> VmError {
    let before = resources();
    let failures = podvisor_vmm::counters().start_failures;
    let error = match Vm::start(config) {
        Ok(vm) => panic!("the VM started: {vm:?}"),
        Err(error) => error,
    };
    assert_eq!(resources(), before, "fds and vCPU threads after `{error}`");
    assert_eq!(
        podvisor_vmm::counters().start_failures,
        failures + 1,
        "the failure is counted"
    );
    error
}

fn tiny_kernel() -> PathBuf {
    pvh_guest("bad-input.elf", halt_forever)
}

#[test]
fn missing_kernel_is_reported_with_its_path() {
    let _alone = alone();
    let path = Path::new("/nonexistent/podvisor/vmlinux");
    let error = start_fails(VmConfig::new(path));
    assert!(matches!(&error, VmError::Boot(BootError::KernelMissing { path: p }) if p == path));
    assert!(
        error.to_string().contains("/nonexistent/podvisor/vmlinux"),
        "{error}"
    );
}

#[test]
fn unreadable_kernel_is_reported_with_its_path() {
    let _alone = alone();
    // A directory opens but cannot be read.
    let dir = std::env::temp_dir();
    let error = start_fails(VmConfig::new(&dir));
    assert!(
        matches!(&error, VmError::Boot(BootError::KernelUnreadable { .. })),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&*dir.to_string_lossy()),
        "{error}"
    );
}

#[test]
fn file_that_is_no_kernel_is_rejected() {
    let _alone = alone();
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("text", b"#!/bin/sh\necho this is not a kernel\n".to_vec()),
        ("truncated-elf", elf(&[0xf4], true)[..64].to_vec()),
    ] {
        let path = write_temp(name, &bytes);
        let error = start_fails(VmConfig::new(&path));
        assert!(
            matches!(&error, VmError::Boot(BootError::NotAKernel { .. })),
            "{name}: {error:?}"
        );
        assert!(
            error.to_string().contains(&*path.to_string_lossy()),
            "{error}"
        );
    }
}

#[test]
fn kernel_too_large_for_memory_is_rejected() {
    let _alone = alone();
    // Loaded at 2 MiB, so 2 MiB of guest memory cannot hold it.
    let error = start_fails(VmConfig::new(tiny_kernel()).memory_mib(2));
    assert!(
        matches!(&error, VmError::Boot(BootError::KernelTooLarge { .. })),
        "{error:?}"
    );
}

#[test]
fn missing_initrd_is_reported_with_its_path() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).initrd("/nonexistent/initrd.cpio"));
    assert!(
        matches!(&error, VmError::Boot(BootError::InitrdUnreadable { .. })),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("/nonexistent/initrd.cpio"),
        "{error}"
    );
}

#[test]
fn command_line_too_long_is_rejected() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).cmdline("x".repeat(3000)));
    assert!(
        matches!(
            error,
            VmError::Config(ConfigError::CmdlineTooLong {
                len: 3000,
                max: 2047
            })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("cmdline"), "{error}");

    let error = start_fails(VmConfig::new(tiny_kernel()).cmdline("console=ttyS0\0quiet"));
    assert!(
        matches!(error, VmError::Config(ConfigError::CmdlineHasNul(13))),
        "{error:?}"
    );
}

#[test]
fn zero_memory_is_rejected() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).memory_mib(0));
    assert!(
        matches!(error, VmError::Config(ConfigError::NoMemory)),
        "{error:?}"
    );
    assert!(error.to_string().contains("memory_mib"), "{error}");
}

#[test]
fn too_much_memory_is_rejected() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).memory_mib(1 << 19));
    assert!(
        matches!(
            error,
            VmError::Config(ConfigError::TooMuchMemory {
                limit: "host RAM",
                ..
            })
        ),
        "{error:?}"
    );
    let error = start_fails(VmConfig::new(tiny_kernel()).memory_mib(u64::MAX / 2));
    assert!(
        matches!(error, VmError::Config(ConfigError::TooMuchMemory { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("memory_mib"), "{error}");
}

#[test]
fn zero_vcpus_are_rejected() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).vcpus(0));
    assert!(
        matches!(error, VmError::Config(ConfigError::NoVcpus)),
        "{error:?}"
    );
    assert!(error.to_string().contains("vcpus"), "{error}");
}

#[test]
fn too_many_vcpus_are_rejected() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).vcpus(1000));
    assert!(
        matches!(
            error,
            VmError::Config(ConfigError::TooManyVcpus {
                requested: 1000,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("vcpus"), "{error}");
}

#[test]
fn missing_kvm_device_is_reported() {
    let _alone = alone();
    let error = start_fails(VmConfig::new(tiny_kernel()).kvm_path("/nonexistent/kvm"));
    assert!(
        matches!(error, VmError::Kvm(KvmError::NoDevice { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("/nonexistent/kvm"), "{error}");
}

#[test]
fn kvm_device_without_permission_is_reported() {
    let _alone = alone();
    // sysfs refuses read-write opens of read-only attributes even to root, which gives the
    // same EACCES a /dev/kvm outside one's groups does.
    let path = Path::new("/sys/devices/system/cpu/online");
    let error = start_fails(VmConfig::new(tiny_kernel()).kvm_path(path));
    assert!(
        matches!(error, VmError::Kvm(KvmError::NoPermission { .. })),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("/sys/devices/system/cpu/online"),
        "{error}"
    );
}

#[test]
fn file_that_is_no_kvm_device_is_reported() {
    let _alone = alone();
    let path = write_temp("not-kvm", b"");
    let error = start_fails(VmConfig::new(tiny_kernel()).kvm_path(&path));
    assert!(
        matches!(error, VmError::Kvm(KvmError::ApiVersion(_))),
        "{error:?}"
    );
}

#[test]
fn dropping_a_running_vm_releases_its_threads_and_fds() {
    let _alone = alone();
    let kernel = tiny_kernel();
    let before = resources();
    for _ in 0..3 {
        let vm = Vm::start(VmConfig::new(&kernel).memory_mib(16).vcpus(2)).unwrap();
        assert_eq!(
            wait_for_vcpu_threads(before.1 + 2),
            before.1 + 2,
            "two vCPU threads run"
        );
        std::thread::sleep(Duration::from_millis(20));
        drop(vm);
        assert_eq!(resources(), before);
    }
}

#[test]
fn waiting_a_vm_out_releases_its_threads_and_fds() {
    let _alone = alone();
    let kernel = pvh_guest("waited.elf", power_off);
    let before = resources();
    let vm = Vm::start(VmConfig::new(&kernel).memory_mib(16).vcpus(2)).unwrap();
    vm.wait(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(
        resources().1,
        before.1,
        "no vCPU thread is left once wait returns"
    );
    drop(vm);
    assert_eq!(resources(), before);
}
