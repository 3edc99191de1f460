//! `podvisor vm run` and `podvisor host-check`: the VMM used directly, without a cluster.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use podvisor_vmm::{ExitReason, SerialSink, Vm, VmConfig};

use crate::error::{CliError, Result, one_line};

/// `podvisor vm run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  podvisor vm run --kernel ~/.cache/podvisor/kernel/vmlinux \
    --cmdline \"console=ttyS0 panic=-1\" --vcpus 1 --memory 256 --timeout 60"
)]
pub struct VmRunArgs {
    /// The guest kernel (bzImage, or an ELF vmlinux with a PVH note).
    #[arg(long)]
    pub kernel: PathBuf,
    /// An initrd.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    #[arg(
        long,
        default_value = "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1"
    )]
    pub cmdline: String,
    /// vCPUs.
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 256)]
    pub memory: u64,
    /// Stop the VM after this many seconds (exit status 124).
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// Boots a kernel with its console on stdout; prints how the VM ended on stderr.
///
/// # Errors
/// The VM cannot start (a missing or bad kernel, no KVM); it ended on a fault; or it ran out
/// of time ([`CliError::Exit`] 124 after the reason is printed).
pub fn vm_run(args: &VmRunArgs) -> Result<()> {
    if !args.kernel.is_file() {
        return Err(CliError::Usage(format!(
            "kernel {} does not exist",
            args.kernel.display()
        )));
    }
    if let Some(initrd) = &args.initrd
        && !initrd.is_file()
    {
        return Err(CliError::Usage(format!(
            "initrd {} does not exist",
            initrd.display()
        )));
    }
    let mut config = VmConfig::new(&args.kernel)
        .vcpus(args.vcpus)
        .memory_mib(args.memory)
        .cmdline(args.cmdline.clone())
        .serial(SerialSink::Stdout);
    if let Some(initrd) = &args.initrd {
        config = config.initrd(initrd);
    }
    let started = Instant::now();
    let vm = Vm::start(config)
        .map_err(|e| CliError::Failed(format!("cannot start the VM: {}", one_line(&e))))?;
    if let Ok(probe) = podvisor_vmm::probe(Path::new(podvisor_vmm::DEFAULT_KVM_PATH))
        && !probe.is_hardware_assisted()
    {
        eprintln!(
            "podvisor: note: this host's KVM is {}",
            probe.mode.linux_guest_notes()
        );
    }
    let timeout = args.timeout.map(Duration::from_secs_f64);
    let reason = vm
        .wait(timeout)
        .map_err(|e| CliError::Failed(one_line(&e)))?;
    let _ = std::io::stdout().flush();
    let took = started.elapsed().as_secs_f64();
    match reason {
        ExitReason::Shutdown | ExitReason::Reset | ExitReason::HostStop => {
            eprintln!("podvisor: VM ended: {reason} after {took:.1}s");
            Ok(())
        }
        ExitReason::Timeout => {
            eprintln!("podvisor: VM stopped: timed out after {took:.1}s");
            Err(CliError::Exit(124))
        }
        other => Err(CliError::Failed(format!(
            "VM ended: {other} after {took:.1}s"
        ))),
    }
}

/// `podvisor host-check`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  podvisor host-check")]
pub struct HostCheckArgs {
    /// The static agent binary to check for.
    #[arg(long, env = "PODVISOR_AGENT")]
    pub agent: Option<PathBuf>,
}

/// What the host can do, and which isolation a node agent here will offer.
#[derive(Debug)]
pub struct HostReport {
    /// Lines of `name: value`.
    pub lines: Vec<(String, String)>,
    /// Whether pods can run here at all.
    pub can_run_pods: bool,
}

/// Probes the host.
pub fn check(args: &HostCheckArgs) -> HostReport {
    let mut lines = Vec::new();
    let mut push = |k: &str, v: String| lines.push((k.to_string(), v));
    let probe = podvisor_vmm::probe(Path::new(podvisor_vmm::DEFAULT_KVM_PATH));
    let hardware = match &probe {
        Ok(p) => {
            push("kvm", p.mode.to_string());
            push("max vcpus", p.max_vcpus.to_string());
            push("linux guests", p.mode.linux_guest_notes().to_string());
            p.is_hardware_assisted()
        }
        Err(e) => {
            push("kvm", format!("absent: {}", one_line(e)));
            false
        }
    };
    push(
        "isolation",
        if hardware {
            "microvm (pods run in their own micro-VMs)".into()
        } else {
            "namespaces (this host's KVM cannot boot a Linux guest, so pods run in Linux \
             namespaces and VirtualMachines say why they cannot power on)"
                .into()
        },
    );
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    push(
        "root",
        if root {
            "yes".into()
        } else {
            "no (node agents need root)".into()
        },
    );
    let cgroup2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    push("cgroups", if cgroup2 { "v2".into() } else { "v1".into() });
    let cache = crate::default_cache();
    let have = |p: &Path| {
        if p.exists() {
            format!("{} (present)", p.display())
        } else {
            format!("{} (missing)", p.display())
        }
    };
    push("kernel", have(&cache.join("kernel/vmlinux")));
    push("busybox image", have(&cache.join("images/busybox")));
    match &args.agent {
        Some(a) => push("agent", have(a)),
        None => push("agent", "PODVISOR_AGENT is not set".into()),
    }
    HostReport {
        lines,
        can_run_pods: root,
    }
}

/// Prints the host check; fails when pods cannot run here at all.
///
/// # Errors
/// [`CliError::Failed`] when this host cannot run pods.
pub fn host_check(args: &HostCheckArgs) -> Result<()> {
    let report = check(args);
    let width = report.lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &report.lines {
        println!("{k:width$}  {v}");
    }
    if report.can_run_pods {
        Ok(())
    } else {
        Err(CliError::Failed(
            "this host cannot run pods: node agents need root".into(),
        ))
    }
}
