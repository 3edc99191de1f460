//! Where the masters are, and the clients that reach them.
//!
//! Endpoints come from, in order: the `--endpoints` flag, the `PODVISOR_ENDPOINTS` environment
//! variable, or the config file (`--config`, `PODVISOR_CONFIG`, else `$PODVISOR_HOME/config`,
//! the file `podvisor cluster up` writes). The config file is plain text, one `key = value` a
//! line; `endpoints = 127.0.0.1:23790,127.0.0.1:23791` is the line that matters here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use podvisor_cluster::registry::Registry;
use podvisor_store::{Client, ClientConfig};

use crate::error::{CliError, Result};

/// Where the local cluster keeps its state when `PODVISOR_HOME` is not set.
pub const DEFAULT_HOME: &str = "/tmp/podvisor-demo";

/// The directory of the local cluster.
pub fn home() -> PathBuf {
    std::env::var_os("PODVISOR_HOME").map_or_else(|| PathBuf::from(DEFAULT_HOME), PathBuf::from)
}

/// The config file read when no endpoints are given.
pub fn config_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("PODVISOR_CONFIG") {
        return PathBuf::from(p);
    }
    home().join("config")
}

/// Reads `key = value` lines.
pub fn read_config(path: &Path) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// Splits a comma-separated endpoint list.
pub fn split_endpoints(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The connection settings every client verb shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// Client addresses of the masters.
    pub endpoints: Vec<String>,
    /// How long one request may take, retries included.
    pub timeout: Duration,
}

impl Context {
    /// Resolves the endpoints from the flag, the environment or the config file.
    ///
    /// # Errors
    /// [`CliError::Usage`] when none of them names an endpoint.
    pub fn resolve(flag: Option<&str>, config: Option<&Path>, timeout: Duration) -> Result<Self> {
        let from_env = std::env::var("PODVISOR_ENDPOINTS").ok();
        let text = match flag.map(String::from).or(from_env) {
            Some(t) => t,
            None => {
                let path = config_path(config);
                let lines = read_config(&path).ok_or_else(|| {
                    CliError::Usage(format!(
                        "no endpoints: pass --endpoints, set PODVISOR_ENDPOINTS, or run \
                         `podvisor cluster up` (which writes {})",
                        path.display()
                    ))
                })?;
                lines
                    .into_iter()
                    .find(|(k, _)| k == "endpoints")
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        CliError::Usage(format!("{} has no `endpoints = ...` line", path.display()))
                    })?
            }
        };
        let endpoints = split_endpoints(&text);
        if endpoints.is_empty() {
            return Err(CliError::Usage("the endpoint list is empty".into()));
        }
        Ok(Context { endpoints, timeout })
    }

    /// A client of the masters, checked with one status request so that an unreachable
    /// cluster is reported as such.
    ///
    /// # Errors
    /// [`CliError::Unreachable`] when no master answers within the timeout.
    pub fn client(&self) -> Result<Arc<Client>> {
        let mut cfg = ClientConfig::new(&self.endpoints);
        cfg.timeout = self.timeout;
        let client = Client::with_config(cfg)?;
        client.status().map_err(|e| CliError::Unreachable {
            endpoints: self.endpoints.join(","),
            reason: crate::error::one_line(&e),
        })?;
        Ok(Arc::new(client))
    }

    /// A registry over a checked client.
    ///
    /// # Errors
    /// As [`Context::client`].
    pub fn registry(&self) -> Result<Registry> {
        Ok(Registry::new(self.client()?))
    }
}
