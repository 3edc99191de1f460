//! The agent binary's command line: unknown roles are refused.

use std::process::Command;

#[test]
fn unknown_role_is_refused_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_podvisor-agent"))
        .arg("bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role \"bogus\""));
}
