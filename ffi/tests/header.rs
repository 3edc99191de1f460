//! The header and the exported-symbol list stay in step with the code.
//!
//! `include/podvisor.h` is generated with cbindgen and committed, and `abi/symbols.txt` lists
//! every function, enum value and struct field of the ABI. These tests fail if regenerating the
//! header would change it, or if the symbol list lost or changed a line. Run them with
//! `PODVISOR_BLESS=1` (what `make header` does) to rewrite the header and append new symbols.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../include/podvisor.h")
}

fn bless() -> bool {
    std::env::var_os("PODVISOR_BLESS").is_some_and(|v| v == "1")
}

fn generate() -> String {
    let dir = crate_dir();
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn header_is_up_to_date() {
    let fresh = generate();
    let path = header_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if bless() {
        if committed != fresh {
            std::fs::write(&path, &fresh).expect("include/podvisor.h is writable");
        }
        return;
    }
    assert!(
        committed == fresh,
        "include/podvisor.h is stale: run `make header` and commit the result"
    );
}

/// Joins each declaration of the header into one normalised line.
fn abi_lines(header: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    let mut in_comment = false;
    let mut in_enum: Option<String> = None;
    let mut in_struct: Option<(String, usize)> = None;
    let mut body: Vec<String> = Vec::new();
    for raw in header.lines() {
        let line = raw.trim();
        if in_comment {
            in_comment = !line.contains("*/");
            continue;
        }
        if line.starts_with("/*") {
            in_comment = !line.contains("*/");
            continue;
        }
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("extern \"C\"")
            || line == "}" && in_enum.is_none() && in_struct.is_none() && pending.is_empty()
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix("typedef enum ") {
            in_enum = Some(rest.trim_end_matches('{').trim().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("typedef struct ") {
            if rest.ends_with('{') {
                in_struct = Some((rest.trim_end_matches('{').trim().to_owned(), 0));
                continue;
            }
            lines.push(format!(
                "opaque {}",
                rest.trim_end_matches(';').split(' ').next().unwrap_or("")
            ));
            continue;
        }
        if let Some(name) = &in_enum {
            if line.starts_with('}') {
                in_enum = None;
                continue;
            }
            lines.push(format!("enum {name} {}", line.trim_end_matches(',')));
            continue;
        }
        if let Some((name, index)) = &mut in_struct {
            if line.starts_with('}') {
                in_struct = None;
                continue;
            }
            body.push(format!(
                "field {name}[{index}] {}",
                line.trim_end_matches(';')
            ));
            *index += 1;
            lines.append(&mut body);
            continue;
        }
        if !pending.is_empty() {
            pending.push(' ');
        }
        pending.push_str(line);
        if pending.ends_with(';') {
            let decl = pending.split_whitespace().collect::<Vec<_>>().join(" ");
            let decl = decl.replace("( ", "(").replace(" )", ")");
            if decl.starts_with("typedef ") {
                lines.push(decl);
            } else if decl.contains('(') {
                lines.push(format!("fn {decl}"));
            }
            pending.clear();
        }
    }
    lines
}

fn symbols_path() -> PathBuf {
    crate_dir().join("abi/symbols.txt")
}

#[test]
fn abi_symbols_only_grow() {
    let header = std::fs::read_to_string(header_path()).expect("include/podvisor.h exists");
    let current = abi_lines(&header);
    let current_set: BTreeSet<&String> = current.iter().collect();
    let path = symbols_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let committed: Vec<&str> = committed
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let committed_set: BTreeSet<&str> = committed.iter().copied().collect();

    let missing: Vec<&str> = committed
        .iter()
        .copied()
        .filter(|l| !current_set.contains(&l.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "the ABI lost or changed these committed lines of ffi/abi/symbols.txt; symbols may only be \
         added:\n{}",
        missing.join("\n")
    );

    let added: Vec<&String> = current
        .iter()
        .filter(|l| !committed_set.contains(l.as_str()))
        .collect();
    if added.is_empty() {
        return;
    }
    if bless() {
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            "# libpodvisor's ABI: every function, enum value, opaque type and struct field.\n\
             # Lines may only be added (tests/header.rs checks it); see the ABI policy in README.md.\n"
                .to_owned()
        });
        for line in added {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&path, text).expect("ffi/abi/symbols.txt is writable");
        return;
    }
    panic!(
        "new ABI lines are not in ffi/abi/symbols.txt; run `make header` and commit:\n{}",
        added
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn exported_symbols_match_the_header() {
    let header = std::fs::read_to_string(header_path()).expect("include/podvisor.h exists");
    let declared: BTreeSet<String> = abi_lines(&header)
        .iter()
        .filter_map(|l| l.strip_prefix("fn "))
        .filter_map(|d| d.split('(').next())
        .filter_map(|d| d.rsplit([' ', '*']).next())
        .map(str::to_owned)
        .collect();
    let exported: BTreeSet<String> = std::fs::read_dir(crate_dir().join("src"))
        .expect("src is readable")
        .flat_map(|e| rust_files(&e.expect("src entry").path()))
        .flat_map(|file| exported_names(&file))
        .collect();
    assert_eq!(
        declared, exported,
        "every #[no_mangle] function must be declared in the header"
    );
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        std::fs::read_dir(path)
            .expect("dir is readable")
            .flat_map(|e| rust_files(&e.expect("entry").path()))
            .collect()
    } else if path.extension().is_some_and(|e| e == "rs") {
        vec![path.to_owned()]
    } else {
        Vec::new()
    }
}

fn exported_names(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("source is readable");
    let mut names = Vec::new();
    let mut after_no_mangle = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "#[unsafe(no_mangle)]" {
            after_no_mangle = true;
        } else if after_no_mangle && line.contains("extern \"C\" fn ") {
            let name = line
                .split("fn ")
                .nth(1)
                .and_then(|r| r.split(['(', '<']).next());
            names.extend(name.map(str::to_owned));
            after_no_mangle = false;
        }
    }
    names
}
