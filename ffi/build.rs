//! Gives the shared library its versioned soname, `libpodvisor.so.<ABI version>`, so a host
//! linked against one ABI never loads a library of another. The ABI version is read from
//! `src/version.rs`, where the header's `PODVISOR_ABI_VERSION` is defined, so the two cannot
//! drift apart.

use std::fs;

fn main() {
    let source = "src/version.rs";
    println!("cargo:rerun-if-changed={source}");
    let text = fs::read_to_string(source).expect("src/version.rs is readable");
    let abi = text
        .lines()
        .find_map(|l| l.strip_prefix("pub const PODVISOR_ABI_VERSION: u32 = "))
        .and_then(|rest| rest.strip_suffix(';'))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .expect("src/version.rs defines `pub const PODVISOR_ABI_VERSION: u32 = N;`");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpodvisor.so.{abi}");
}
