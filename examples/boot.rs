//! Boots a kernel in a podvisor VM, streams its console to stdout and reports how it ended.
//!
//! ```text
//! cargo run -p podvisor-examples --example boot -- --kernel ~/.cache/podvisor/kernel/vmlinux \
//!     [--initrd INITRD] [--cmdline "console=ttyS0"] [--vcpus 1] [--memory-mib 256] \
//!     [--boot auto|pvh|linux64] [--timeout SECS]
//! ```
//!
//! At the end it prints the exit reason, the time from start to the first serial byte and
//! the time from start to exit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use podvisor_vmm::{BootProtocol, ExitReason, SerialSink, Vm, VmConfig};

struct Args {
    kernel: PathBuf,
    initrd: Option<PathBuf>,
    cmdline: String,
    vcpus: u32,
    memory_mib: u64,
    boot: BootProtocol,
    timeout: Option<Duration>,
}

fn usage(problem: &str) -> String {
    format!(
        "{problem}\nusage: boot --kernel KERNEL [--initrd INITRD] [--cmdline CMDLINE] [--vcpus N] \
         [--memory-mib MIB] [--boot auto|pvh|linux64] [--timeout SECS]"
    )
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        kernel: PathBuf::new(),
        initrd: None,
        cmdline: "console=ttyS0 earlyprintk=serial,ttyS0,115200".to_owned(),
        vcpus: 1,
        memory_mib: 256,
        boot: BootProtocol::Auto,
        timeout: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--kernel" => args.kernel = value()?.into(),
            "--initrd" => args.initrd = Some(value()?.into()),
            "--cmdline" => args.cmdline = value()?,
            "--vcpus" => {
                args.vcpus = value()?
                    .parse()
                    .map_err(|e| usage(&format!("--vcpus: {e}")))?
            }
            "--memory-mib" => {
                args.memory_mib = value()?
                    .parse()
                    .map_err(|e| usage(&format!("--memory-mib: {e}")))?
            }
            "--boot" => {
                args.boot = match value()?.as_str() {
                    "auto" => BootProtocol::Auto,
                    "pvh" => BootProtocol::Pvh,
                    "linux64" => BootProtocol::Linux64,
                    other => return Err(usage(&format!("unknown boot protocol {other}"))),
                }
            }
            "--timeout" => {
                let secs: f64 = value()?
                    .parse()
                    .map_err(|e| usage(&format!("--timeout: {e}")))?;
                args.timeout = Some(Duration::from_secs_f64(secs));
            }
            "-h" | "--help" => return Err(usage("boots a kernel in a podvisor VM")),
            other => return Err(usage(&format!("unknown argument {other}"))),
        }
    }
    if args.kernel.as_os_str().is_empty() {
        return Err(usage("--kernel is required"));
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };

    let started = Instant::now();
    let first_byte: Arc<OnceLock<Duration>> = Arc::new(OnceLock::new());
    let seen = first_byte.clone();
    let console = SerialSink::Callback(Arc::new(move |bytes: &[u8]| {
        seen.get_or_init(|| started.elapsed());
        let mut out = std::io::stdout().lock();
        // A closed stdout only loses the console copy; the VM keeps running.
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }));

    let mut config = VmConfig::new(&args.kernel)
        .vcpus(args.vcpus)
        .memory_mib(args.memory_mib)
        .cmdline(args.cmdline)
        .boot(args.boot)
        .serial(console);
    if let Some(initrd) = args.initrd {
        config = config.initrd(initrd);
    }

    let vm = match Vm::start(config) {
        Ok(vm) => vm,
        Err(error) => {
            eprintln!("boot: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            return ExitCode::FAILURE;
        }
    };
    let reason = match vm.wait(args.timeout) {
        Ok(reason) => reason,
        Err(error) => {
            eprintln!("boot: {error}");
            return ExitCode::FAILURE;
        }
    };
    let ended = started.elapsed();

    println!();
    println!("exit reason: {reason}");
    match first_byte.get() {
        Some(at) => println!("time to first serial byte: {:.3} s", at.as_secs_f64()),
        None => println!("time to first serial byte: none written"),
    }
    println!("time to exit: {:.3} s", ended.as_secs_f64());
    match reason {
        ExitReason::Shutdown | ExitReason::Timeout => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
