//! Builds (or finds in the cache) the micro-VM guest image and prints where it is and the kernel
//! command line that loads its modules.
//!
//! `build_initramfs <static agent> <kernel cache dir> <output dir>`; the kernel cache is the
//! directory `make kernel` fills (`$PODVISOR_CACHE/kernel`, with `modules/`).

use std::path::PathBuf;

use podvisor_sandbox::GuestConfig;
use podvisor_sandbox::initramfs::{self, GUEST_MODULES};

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [agent, kernel, out] = args.as_slice() else {
        eprintln!("usage: build_initramfs <static agent> <kernel cache dir> <output dir>");
        std::process::exit(2);
    };
    match initramfs::build(agent, &kernel.join("modules"), GUEST_MODULES, out) {
        Ok(image) => {
            let guest = GuestConfig {
                kernel: kernel.join("vmlinux"),
                initramfs: image.path.clone(),
                modules: image.modules.clone(),
                vcpus: 1,
                memory_mib: 256,
            };
            let how = if image.built { "built" } else { "cached" };
            println!("initramfs: {} ({how})", image.path.display());
            println!("cmdline: {}", guest.cmdline());
        }
        Err(e) => {
            eprintln!("build_initramfs: {e}");
            std::process::exit(1);
        }
    }
}
