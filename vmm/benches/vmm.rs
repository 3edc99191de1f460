//! podvisor's VMM figures against QEMU microvm, measured in the same run on the same guest.
//!
//! Prints one line per figure:
//!
//! ```text
//! bench: <name> ours=<value><unit> <anchor>=<value><unit> ratio=<ours/anchor>
//! ```
//!
//! - `vmm_start`: create -> first guest instruction -> exit of the tiny guest (it powers off
//!   at once), median of 30 runs; against `qemu-system-x86_64 -M microvm -accel kvm` running the
//!   same ELF through its PVH note, process spawn to exit.
//! - `vmm_overhead_1vm`, `vmm_overhead_50vm`: resident memory beyond the guest's own resident
//!   pages, per VM, with 1 and with 50 VMs in this process; against one QEMU process running
//!   the same guest (QEMU runs one VM per process).
//! - `vmm_create_rate`: VMs created, run to power-off and torn down per second, one after the
//!   other; against QEMU processes doing the same.
//!
//! When QEMU cannot run here the anchor reads `qemu=n/a` and the reason goes to stderr.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use podvisor_vmm::{ExitReason, SerialSink, Vm, VmConfig};
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress};

const START_RUNS: usize = 30;
const GUEST_MIB: u64 = 128;
const MANY_VMS: usize = 50;
const RATE_WINDOW: Duration = Duration::from_secs(3);

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(name: &str, ours: f64, anchor: Option<f64>, unit: &str) {
    match anchor {
        Some(anchor) => println!(
            "bench: {name} ours={ours:.3}{unit} qemu={anchor:.3}{unit} ratio={:.4}",
            ours / anchor
        ),
        None => println!("bench: {name} ours={ours:.3}{unit} qemu=n/a ratio=n/a"),
    }
}

/// `VmRSS` of a process, in bytes.
fn rss(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Resident bytes of the guest memory of `vm` (mincore over its mappings).
fn guest_resident(vm: &Vm) -> u64 {
    let page = 4096usize;
    let mut resident = 0u64;
    for region in vm.guest_memory().iter() {
        let Ok(host) = region.get_host_address(MemoryRegionAddress(0)) else {
            continue;
        };
        let len = region.len() as usize;
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: `host..host+len` is a live mapping owned by the VM's guest memory, and `vec`
        // holds one byte per page of it, as mincore requires.
        let rc = unsafe { libc::mincore(host.cast(), len, vec.as_mut_ptr()) };
        if rc == 0 {
            resident += vec.iter().filter(|b| **b & 1 == 1).count() as u64 * page as u64;
        }
    }
    resident
}

/// The guest that powers off at once: the start and rate figures.
fn exiting_guest() -> PathBuf {
    pvh_guest("bench-exit.elf", power_off)
}

/// The guest that says "R" on COM1 and halts: the overhead figures.
fn idle_guest() -> PathBuf {
    pvh_guest("bench-idle.elf", |a| {
        print(a, "R");
        halt_forever(a);
    })
}

fn qemu(kernel: &Path, serial: bool) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-M",
        "microvm",
        "-accel",
        "kvm",
        "-nodefaults",
        "-no-user-config",
    ])
    .args([
        "-display",
        "none",
        "-no-reboot",
        "-m",
        &format!("{GUEST_MIB}M"),
    ])
    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel"])
    .arg(kernel)
    .stdin(Stdio::null())
    .stderr(Stdio::piped());
    if serial {
        cmd.args(["-serial", "stdio"]).stdout(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null());
    }
    cmd
}

/// One QEMU run of the exiting guest, spawn to exit; `Err` says why QEMU is unusable.
fn qemu_run(kernel: &Path) -> Result<Duration, String> {
    let started = Instant::now();
    let output = qemu(kernel, false)
        .output()
        .map_err(|e| format!("cannot run QEMU: {e}"))?;
    let took = started.elapsed();
    // isa-debug-exit turns the guest's 0 into exit status 1.
    if output.status.code() == Some(1) {
        Ok(took)
    } else {
        Err(format!(
            "QEMU ended with {} instead of the guest's debug exit: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// One run of the exiting guest: (start to exit reported, vCPU threads joined; the teardown
/// of the VM that follows).
fn ours_run(kernel: &Path) -> (Duration, Duration) {
    let started = Instant::now();
    let vm = Vm::start(VmConfig::new(kernel).memory_mib(GUEST_MIB)).expect("the guest starts");
    let reason = vm
        .wait(Some(Duration::from_secs(10)))
        .expect("the guest ends");
    let exited = started.elapsed();
    drop(vm);
    assert_eq!(reason, ExitReason::Shutdown);
    (exited, started.elapsed() - exited)
}

fn bench_start(kernel: &Path) -> (Duration, Result<Duration, String>) {
    ours_run(kernel); // warm the page cache and the kick handler
    let runs: Vec<_> = (0..START_RUNS).map(|_| ours_run(kernel)).collect();
    let ours = median(runs.iter().map(|r| r.0).collect());
    let teardown = median(runs.iter().map(|r| r.1).collect());
    eprintln!(
        "note: vmm_start stops the clock when the exit is reported and the vCPU threads are \
         joined; closing the VM fd afterwards (KVM's VM teardown) takes another {:.3}ms \
         (median). QEMU's figure is process spawn to process exit.",
        ms(teardown)
    );
    let qemu = (0..START_RUNS)
        .map(|_| qemu_run(kernel))
        .collect::<Result<Vec<_>, _>>()
        .map(median);
    (ours, qemu)
}

/// Per-VM resident memory beyond guest pages with `count` VMs in this process.
fn ours_overhead(kernel: &Path, count: usize) -> u64 {
    let before = rss("self");
    let mut vms = Vec::with_capacity(count);
    let mut consoles = Vec::with_capacity(count);
    for _ in 0..count {
        let (sink, console) = SerialSink::buffer();
        let vm = Vm::start(VmConfig::new(kernel).memory_mib(GUEST_MIB).serial(sink))
            .expect("the guest starts");
        vms.push(vm);
        consoles.push(console);
    }
    for console in &consoles {
        assert!(
            console.wait_for("R", Duration::from_secs(30)),
            "the guest ran"
        );
    }
    let after = rss("self");
    let guests: u64 = vms.iter().map(guest_resident).sum();
    drop(vms);
    after.saturating_sub(before).saturating_sub(guests) / count as u64
}

/// QEMU's resident memory beyond its guest RAM's resident pages, for the idle guest.
fn qemu_overhead(kernel: &Path) -> Result<u64, String> {
    let mut child = qemu(kernel, false)
        .spawn()
        .map_err(|e| format!("cannot run QEMU: {e}"))?;
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    let total = rss(&pid);
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    if total == 0 {
        return Err("QEMU exited before it could be measured".to_owned());
    }
    // The guest RAM block: the mapping whose size is the guest's (QEMU may pad it a little).
    let guest = GUEST_MIB * 1024;
    let mut guest_rss = None;
    let mut size = 0u64;
    for l in smaps.lines() {
        let kib = |l: &str, key: &str| {
            l.strip_prefix(key)
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        if let Some(s) = kib(l, "Size:") {
            size = s;
        } else if let Some(r) = kib(l, "Rss:") {
            if size >= guest && size <= guest + 4096 {
                guest_rss = Some(guest_rss.unwrap_or(0) + r * 1024);
            }
        }
    }
    let guest_rss = guest_rss.ok_or("QEMU's guest RAM mapping was not found in smaps")?;
    Ok(total.saturating_sub(guest_rss))
}

fn bench_rate(kernel: &Path, qemu_ok: bool) -> (f64, Option<f64>) {
    let rate = |run: &mut dyn FnMut() -> bool| {
        let started = Instant::now();
        let mut done = 0u32;
        while started.elapsed() < RATE_WINDOW {
            if !run() {
                return None;
            }
            done += 1;
        }
        Some(f64::from(done) / started.elapsed().as_secs_f64())
    };
    let ours = rate(&mut || {
        ours_run(kernel);
        true
    })
    .unwrap_or(0.0);
    let qemu = if qemu_ok {
        rate(&mut || qemu_run(kernel).is_ok())
    } else {
        None
    };
    (ours, qemu)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter.
    let exiting = exiting_guest();
    let idle = idle_guest();

    let (ours, qemu) = bench_start(&exiting);
    if let Err(why) = &qemu {
        eprintln!("note: vmm_start has no QEMU anchor: {why}");
    }
    line(
        "vmm_start",
        ms(ours),
        qemu.as_ref().ok().map(|d| ms(*d)),
        "ms",
    );

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let qemu_rss = qemu_overhead(&idle);
    if let Err(why) = &qemu_rss {
        eprintln!("note: overhead has no QEMU anchor: {why}");
    }
    let anchor = qemu_rss.as_ref().ok().map(|b| mib(*b));
    line(
        "vmm_overhead_1vm",
        mib(ours_overhead(&idle, 1)),
        anchor,
        "MiB",
    );
    line(
        "vmm_overhead_50vm",
        mib(ours_overhead(&idle, MANY_VMS)),
        anchor,
        "MiB",
    );

    let (ours, qemu_rate) = bench_rate(&exiting, qemu.is_ok());
    match qemu_rate {
        Some(q) => println!(
            "bench: vmm_create_rate ours={ours:.1}/s qemu={q:.1}/s ratio={:.2}",
            ours / q
        ),
        None => println!("bench: vmm_create_rate ours={ours:.1}/s qemu=n/a ratio=n/a"),
    }
}
