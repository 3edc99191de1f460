//! Debian's cloud kernel on podvisor, from the cache `make kernel` fills.
//!
//! On PVM the guest's ring 0 is emulated, so these tests check the kernel's early log, which it
//! prints on our serial port through `earlyprintk`, and stop the VM as soon as the asserted
//! lines are there. Each stays under three minutes on such a host; they run one at a time.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use podvisor_vmm::memory::{E820Kind, MIB, e820_map};
use podvisor_vmm::{BootProtocol, ExitReason, SerialBuffer, SerialSink, Vm, VmConfig};

/// PVM kernel boots are slow and CPU-bound; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The longest a test waits for all its log lines; under the three minutes a test may take.
const DEADLINE: Duration = Duration::from_secs(170);

/// A file of the cached guest kernel; fails the test, saying what to run, when it is missing.
fn cached(file: &str) -> PathBuf {
    let cache = std::env::var_os("PODVISOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/podvisor")))
        .expect("PODVISOR_CACHE or HOME is set");
    let path = cache.join("kernel").join(file);
    assert!(
        path.is_file(),
        "guest kernel artifact {} is missing: run `make kernel` first",
        path.display()
    );
    path
}

/// Waits for each needle in turn, printing when it appeared; panics with the log if one does
/// not show up before [`DEADLINE`].
fn expect_lines(console: &SerialBuffer, started: Instant, needles: &[String]) {
    for needle in needles {
        let left = DEADLINE.saturating_sub(started.elapsed());
        if !console.wait_for(needle, left) {
            panic!(
                "`{needle}` did not appear within {DEADLINE:?} of the start; console so far:\n{}",
                console.text()
            );
        }
        eprintln!("[{:>6.1}s] saw `{needle}`", started.elapsed().as_secs_f64());
    }
}

#[test]
fn debian_vmlinux_boots_through_pvh_and_logs_our_cmdline_e820_initrd_acpi_and_cpus() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let kernel = cached("vmlinux");
    let memory_mib = 256;
    let cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 podvisor.check=pvh-entry";
    // An initrd, to see where the kernel finds it: as high in low RAM as it fits.
    let mut initrd = Vec::new();
    cpio_entry(
        &mut initrd,
        "payload",
        0o100644,
        (0, 0),
        &vec![0x5a; 300 * 1024],
    );
    cpio_entry(&mut initrd, "TRAILER!!!", 0, (0, 0), &[]);
    let initrd_size = initrd.len() as u64;
    let initrd_addr = (memory_mib * MIB - initrd_size) & !0xfff;
    let initrd_end = (initrd_addr + initrd_size).next_multiple_of(0x1000) - 1;
    let initrd_path = common::write_temp("pvh-initrd.cpio", &initrd);

    let (sink, console) = SerialSink::buffer();
    let config = VmConfig::new(kernel)
        .vcpus(2)
        .memory_mib(memory_mib)
        .cmdline(cmdline)
        .initrd(initrd_path)
        .boot(BootProtocol::Pvh)
        .serial(sink);

    let started = Instant::now();
    let vm = Vm::start(config).expect("the kernel loads");

    let mut needles = vec![
        "Linux version ".to_owned(),
        format!("Command line: {cmdline}"),
    ];
    needles.push("BIOS-provided physical RAM map:".to_owned());
    for entry in e820_map(memory_mib * MIB) {
        let kind = match entry.kind {
            E820Kind::Ram => "usable",
            E820Kind::Reserved => "reserved",
        };
        needles.push(format!(
            "BIOS-e820: [mem {:#018x}-{:#018x}] {kind}",
            entry.addr,
            entry.addr + entry.size - 1
        ));
    }
    needles.push(format!(
        "RAMDISK: [mem {initrd_addr:#010x}-{initrd_end:#010x}]"
    ));
    for table in ["RSDP 0x00000000000E0000", "XSDT", "FACP", "DSDT", "APIC"] {
        needles.push(format!("ACPI: {table}"));
    }
    needles.push("Allowing 2 CPUs".to_owned());
    expect_lines(&console, started, &needles);

    vm.stop_handle().stop();
    assert_eq!(
        vm.wait(Some(Duration::from_secs(5))).unwrap(),
        ExitReason::HostStop
    );
}

#[test]
fn debian_bzimage_boots_through_the_64bit_protocol_to_the_decompressor() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let kernel = cached("vmlinuz");
    let (sink, console) = SerialSink::buffer();
    let config = VmConfig::new(kernel)
        .memory_mib(256)
        .cmdline("nokaslr earlyprintk=serial,ttyS0,115200 console=ttyS0")
        .boot(BootProtocol::Linux64)
        .serial(sink);

    let started = Instant::now();
    let vm = Vm::start(config).expect("the bzImage loads");
    // The decompressor's own warning, printed before it decompresses.
    expect_lines(
        &console,
        started,
        &["KASLR disabled: 'nokaslr' on cmdline.".to_owned()],
    );

    vm.stop_handle().stop();
    assert_eq!(
        vm.wait(Some(Duration::from_secs(5))).unwrap(),
        ExitReason::HostStop
    );
}

/// One entry of a newc cpio archive.
fn cpio_entry(out: &mut Vec<u8>, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let ino = out.len() as u32 + 1;
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// An initramfs whose /init (busybox sh) prints `marker` and powers the guest off.
fn initramfs(marker: &str) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("a static busybox at /bin/busybox (apt-get install busybox-static)");
    let init = format!("#!/bin/busybox sh\n/bin/busybox echo {marker}\n/bin/busybox poweroff -f\n");
    let mut out = Vec::new();
    for dir in ["dev", "bin", "proc", "sys"] {
        cpio_entry(&mut out, dir, 0o040755, (0, 0), &[]);
    }
    cpio_entry(&mut out, "dev/console", 0o020600, (5, 1), &[]);
    cpio_entry(&mut out, "bin/busybox", 0o100755, (0, 0), &busybox);
    cpio_entry(&mut out, "init", 0o100755, (0, 0), init.as_bytes());
    cpio_entry(&mut out, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

#[test]
#[ignore = "needs hardware-assisted KVM"]
fn debian_kernel_boots_to_userspace_and_powers_off() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let probe = podvisor_vmm::probe(std::path::Path::new(podvisor_vmm::DEFAULT_KVM_PATH))
        .expect("this host has KVM");
    assert!(
        probe.is_hardware_assisted(),
        "not run: this host's KVM is {}: {}",
        probe.mode,
        probe.mode.linux_guest_notes()
    );

    let marker = "podvisor-userspace-reached";
    let initrd = common::write_temp("initramfs.cpio", &initramfs(marker));
    let (sink, console) = SerialSink::buffer();
    let config = VmConfig::new(cached("vmlinux"))
        .vcpus(2)
        .memory_mib(256)
        .initrd(initrd)
        .cmdline("console=ttyS0 panic=-1 rdinit=/init")
        .serial(sink);

    let started = Instant::now();
    let vm = Vm::start(config).expect("the kernel loads");
    let reason = vm.wait(Some(Duration::from_secs(60))).expect("the VM ends");
    let log = console.text();
    assert!(log.contains(marker), "/init did not run; console:\n{log}");
    assert_eq!(reason, ExitReason::Shutdown, "console:\n{log}");
    eprintln!(
        "booted to userspace and powered off in {:?}",
        started.elapsed()
    );
}
