//! The C tests: C programs under `tests/c/`, compiled with AddressSanitizer (which includes
//! LeakSanitizer) against both the static and the shared libpodvisor, run and expected to pass.
//!
//! - `bad_args.c` gives every entry point bad arguments;
//! - `callbacks.c` takes log and watch callbacks and checks they run with an alternate signal
//!   stack;
//! - `vm_boot.c` boots the guest kernel, reads its console, stops it and reads the exit reason;
//! - `sandbox_run.c` runs busybox containers in a namespace sandbox (with the agent of
//!   `PODVISOR_AGENT` and the image of `PODVISOR_TEST_IMAGE`) and checks micro-VMs are refused
//!   where the host cannot give them;
//! - the layout test generates a C file that asserts the size and offsets of every public
//!   struct against the values Rust computes, so a header that drifts from the code fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use podvisor::*;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The profile directory this test runs from (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    exe.parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .to_owned()
}

/// Builds `libpodvisor.a` and `libpodvisor.so` (cargo test builds only the rlib), once.
fn libraries() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let target_dir = dir.parent().expect("profile dir has a parent");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "-p", "podvisor-ffi", "--lib", "--target-dir"])
            .arg(target_dir);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building libpodvisor failed");
        // Executables linked with -lpodvisor ask for the soname; give the loader that name.
        let soname = dir.join(format!("libpodvisor.so.{}", podvisor::PODVISOR_ABI_VERSION));
        let _ = std::fs::remove_file(&soname);
        std::os::unix::fs::symlink("libpodvisor.so", &soname).expect("soname link");
        dir
    })
}

#[derive(Clone, Copy, Debug)]
enum Linkage {
    Static,
    Shared,
}

/// Compiles `sources` with AddressSanitizer against libpodvisor.
fn compile(name: &str, sources: &[PathBuf], linkage: Linkage) -> PathBuf {
    let lib_dir = libraries();
    let out_dir = lib_dir.join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("c-tests dir");
    let exe = out_dir.join(format!("{name}-{linkage:?}").to_lowercase());
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()));
    cc.args([
        "-std=c11",
        "-g",
        "-O1",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-fsanitize=address",
    ])
    .args(["-fno-omit-frame-pointer", "-pthread"])
    .arg("-I")
    .arg(crate_dir().join("../include"))
    .arg("-I")
    .arg(crate_dir().join("tests/c"))
    .args(sources)
    .arg("-o")
    .arg(&exe);
    match linkage {
        Linkage::Static => {
            cc.arg(lib_dir.join("libpodvisor.a"))
                .args(["-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"]);
        }
        Linkage::Shared => {
            cc.arg("-L")
                .arg(lib_dir)
                .arg("-lpodvisor")
                .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
        }
    }
    let output = cc.output().expect("the C compiler runs");
    assert!(
        output.status.success(),
        "compiling {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// The guest kernel `make kernel` fetches, if it is there.
fn test_kernel() -> Option<PathBuf> {
    let cache = std::env::var_os("PODVISOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/podvisor")))?;
    let kernel = cache.join("kernel/vmlinux");
    kernel.exists().then_some(kernel)
}

/// The busybox image `examples/images/build-busybox` writes, if it is there.
fn test_image() -> Option<PathBuf> {
    if let Some(image) = std::env::var_os("PODVISOR_TEST_IMAGE") {
        return Some(PathBuf::from(image));
    }
    let cache = std::env::var_os("PODVISOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/podvisor")))?;
    let image = cache.join("images/busybox");
    image.join("index.json").exists().then_some(image)
}

fn run(exe: &Path) {
    let mut cmd = Command::new(exe);
    cmd.env(
        "ASAN_OPTIONS",
        "detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1",
    );
    if let Some(kernel) = test_kernel() {
        cmd.env("PODVISOR_TEST_KERNEL", kernel);
    }
    if let Some(image) = test_image() {
        cmd.env("PODVISOR_TEST_IMAGE", image);
    }
    let output = cmd.output().expect("the C test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        exe.display(),
        output.status
    );
}

fn c_test(name: &str) {
    let source = crate_dir().join(format!("tests/c/{name}.c"));
    for linkage in [Linkage::Static, Linkage::Shared] {
        run(&compile(name, std::slice::from_ref(&source), linkage));
    }
}

#[test]
fn c_bad_arguments_give_documented_codes_without_crash_or_leak() {
    c_test("bad_args");
}

#[test]
fn c_bad_arguments_cover_every_entry_point() {
    let header =
        std::fs::read_to_string(crate_dir().join("../include/podvisor.h")).expect("header");
    let test = std::fs::read_to_string(crate_dir().join("tests/c/bad_args.c")).expect("bad_args.c");
    let missing: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '*', '/', '#', '}']) && !l.starts_with("typedef"))
        .filter(|l| l.contains('('))
        .filter_map(|l| l.split('(').next())
        .filter_map(|d| d.rsplit([' ', '*']).next())
        .filter(|name| name.starts_with("podvisor_") && !test.contains(&format!("{name}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "tests/c/bad_args.c does not call: {missing:?}"
    );
}

#[test]
fn c_boots_a_kernel_reads_its_console_and_stops_it() {
    c_test("vm_boot");
}

#[test]
fn c_runs_containers_in_a_namespace_sandbox_and_refuses_micro_vms_it_cannot_run() {
    c_test("sandbox_run");
}

#[test]
fn c_callbacks_run_with_an_alternate_signal_stack() {
    c_test("callbacks");
}

#[test]
fn shared_library_soname_carries_the_abi_version() {
    let lib = libraries().join("libpodvisor.so");
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .expect("readelf runs");
    assert!(out.status.success(), "readelf -d {}", lib.display());
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let want = format!("[libpodvisor.so.{}]", podvisor::PODVISOR_ABI_VERSION);
    assert!(
        dynamic
            .lines()
            .any(|l| l.contains("(SONAME)") && l.contains(&want)),
        "{} has no SONAME {want}:\n{dynamic}",
        lib.display()
    );
}

/// Size, alignment and field offsets of one struct, as Rust lays it out.
struct Layout {
    size: usize,
    align: usize,
    fields: BTreeMap<&'static str, usize>,
}

macro_rules! layouts {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {{
        let mut all = BTreeMap::new();
        $(
            let fields = BTreeMap::from([$((stringify!($field), std::mem::offset_of!($ty, $field))),*]);
            all.insert(stringify!($ty), Layout {
                size: std::mem::size_of::<$ty>(),
                align: std::mem::align_of::<$ty>(),
                fields,
            });
        )*
        all
    }};
}

fn rust_layouts() -> BTreeMap<&'static str, Layout> {
    layouts! {
        podvisor_log_record { struct_size, level, target, message, file, line }
        podvisor_vm_options {
            struct_size, kernel_path, initrd_path, cmdline, vcpus, memory_mib, boot_protocol,
            kvm_path,
        }
        podvisor_vm_exit { struct_size, reason, vcpu, rip }
        podvisor_host_info { struct_size, kvm_mode, hardware_assisted, max_vcpus, recommended_vcpus }
        podvisor_master_options {
            struct_size, id, cluster_id, data_dir, members, members_len, peer_listen,
            client_listen, join, tick_ms,
        }
        podvisor_client_options { struct_size, endpoints, endpoints_len, cluster_id, timeout_ms }
        podvisor_node_agent_options {
            struct_size, name, state_dir, agent_binary, cache_dir, bridge, listen, max_pods,
        }
        podvisor_controllers_options {
            struct_size, identity, lease_ttl_ms, resync_ms, node_grace_ms, preferred_runtime_class,
        }
        podvisor_kv {
            struct_size, key, key_len, value, value_len, create_revision, mod_revision, version,
            lease,
        }
        podvisor_watch_event {
            struct_size, kind, key, key_len, value, value_len, create_revision, mod_revision,
            version, lease, has_prev_kv, prev_value, prev_value_len,
        }
        podvisor_sandbox_options {
            struct_size, id, isolation, state_dir, agent_binary, cgroup_parent, bridge, address,
            gateway, guest_kernel, guest_initramfs, guest_vcpus, guest_memory_mib, log_max_bytes,
            log_max_files,
        }
        podvisor_container_options {
            struct_size, name, image, image_ref, rootfs, args, args_len, env, env_len, cwd, user,
            hostname, stdin, memory_bytes, cpu_millis,
        }
        podvisor_exec_options { struct_size, args, args_len, env, env_len, cwd, user, stdin }
        podvisor_exit_status { struct_size, signaled, code, signal, oom_killed }
    }
}

/// The structs of the header with their field names, in order.
fn header_structs() -> BTreeMap<String, Vec<String>> {
    let header =
        std::fs::read_to_string(crate_dir().join("../include/podvisor.h")).expect("header");
    let mut structs = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in header.lines() {
        if let Some(name) = line
            .strip_prefix("typedef struct ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            current = Some((name.to_owned(), Vec::new()));
        } else if line.starts_with('}') {
            if let Some((name, fields)) = current.take() {
                structs.insert(name, fields);
            }
        } else if let Some((_, fields)) = current.as_mut() {
            let line = line.trim();
            if line.ends_with(';') && !line.starts_with('*') && !line.starts_with("/*") {
                let name = line
                    .trim_end_matches(';')
                    .rsplit([' ', '*'])
                    .next()
                    .unwrap_or("");
                fields.push(name.to_owned());
            }
        }
    }
    structs
}

#[test]
fn c_struct_layout_matches_rust() {
    let rust = rust_layouts();
    let header = header_structs();
    for (name, fields) in &header {
        let layout = rust
            .get(name.as_str())
            .unwrap_or_else(|| panic!("add {name} to rust_layouts()"));
        let mut known: Vec<&str> = layout.fields.keys().copied().collect();
        let mut declared: Vec<&str> = fields.iter().map(String::as_str).collect();
        known.sort_unstable();
        declared.sort_unstable();
        assert_eq!(
            known, declared,
            "rust_layouts() must list every field of {name}"
        );
    }
    assert_eq!(
        rust.len(),
        header.len(),
        "rust_layouts() lists a struct the header lacks"
    );

    let mut c =
        String::from("/* Generated by tests/c_api.rs from Rust's layout; do not edit. */\n");
    c.push_str("#include <stddef.h>\n#include <stdio.h>\n#include \"podvisor.h\"\n\n");
    c.push_str("static int failures;\n");
    c.push_str(
        "#define EXPECT_EQ(what, got, want) do { if ((size_t)(got) != (size_t)(want)) { \\\n",
    );
    c.push_str("    fprintf(stderr, \"%s is %zu in C, %zu in Rust\\n\", what, (size_t)(got), (size_t)(want)); failures++; } } while (0)\n\n");
    c.push_str("int main(void) {\n");
    for (name, layout) in &rust {
        c.push_str(&format!(
            "    EXPECT_EQ(\"sizeof({name})\", sizeof({name}), {});\n",
            layout.size
        ));
        c.push_str(&format!(
            "    EXPECT_EQ(\"_Alignof({name})\", _Alignof({name}), {});\n",
            layout.align
        ));
        for (field, offset) in &layout.fields {
            c.push_str(&format!(
                "    EXPECT_EQ(\"offsetof({name}, {field})\", offsetof({name}, {field}), {offset});\n"
            ));
        }
    }
    c.push_str("    if (failures) return 1;\n    printf(\"layout: every struct matches\\n\");\n    return 0;\n}\n");
    let source = libraries().join("c-tests/layout.c");
    std::fs::create_dir_all(source.parent().expect("has a parent")).expect("c-tests dir");
    std::fs::write(&source, c).expect("layout.c is writable");
    run(&compile("layout", &[source], Linkage::Shared));
}
