//! Shared by the CLI tests: running the `podvisor` binary and reading what it printed.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// What one run of `podvisor` gave.
pub struct Run {
    /// Its exit status code (-1 when a signal ended it).
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts a failure whose stderr is one line holding `needle`.
    pub fn fails_with(&self, needle: &str) {
        assert_ne!(self.code, 0, "expected a failure\nstdout:\n{}", self.stdout);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a one-line error, got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("podvisor: "),
            "error line: {}",
            lines[0]
        );
        assert!(
            lines[0].contains(needle),
            "expected {needle:?} in the error: {}",
            lines[0]
        );
    }
}

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_podvisor"))
}

/// Runs `podvisor args` with `env` added, no endpoints from the caller's environment, and a
/// config path that does not exist.
pub fn podvisor(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("PODVISOR_ENDPOINTS")
        .env("PODVISOR_CONFIG", "/nonexistent/podvisor-config")
        .env("PODVISOR_HOME", "/nonexistent/podvisor-home");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("the podvisor binary runs"))
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static agent binary the Makefile passes in; cluster tests cannot run without it.
pub fn agent() -> String {
    std::env::var("PODVISOR_AGENT").expect(
        "PODVISOR_AGENT names the static agent (vmm/agent/build-static); run these tests with \
         `make test-cli`, which also builds the busybox image",
    )
}
