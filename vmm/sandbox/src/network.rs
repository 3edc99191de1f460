//! The sandbox network: a veth pair from the sandbox's network namespace to a host bridge.
//!
//! The host end joins the bridge (created with the gateway address if missing; it is the node's
//! and outlives sandboxes). The sandbox end becomes `eth0` with the address the caller gives,
//! next to `lo`, with a default route through the gateway. Teardown deletes the veth pair, which
//! removes both ends and every route through them; nothing else was added on the host.
//!
//! Netlink calls run on a short-lived thread that enters the namespace to configure, because a
//! netlink socket speaks for the namespace it was created in.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::thread;

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// A sandbox's place on the node network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The host bridge, created if missing.
    pub bridge: String,
    /// The sandbox's address.
    pub address: Ipv4Addr,
    /// Prefix length of the pod network.
    pub prefix_len: u8,
    /// The gateway, the bridge's address.
    pub gateway: Ipv4Addr,
    /// The network namespace holding the bridge; `None` for the caller's own.
    pub host_netns: Option<PathBuf>,
}

/// Why the network could not be set up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Entering a network namespace failed.
    #[error("entering network namespace {path}")]
    Namespace {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("{step} failed: {reason}")]
    Netlink {
        /// What was being done.
        step: String,
        /// The kernel's answer.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("invalid network configuration: {0}")]
    Invalid(String),
}

fn netlink(step: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let step = step.into();
    move |e| NetworkError::Netlink {
        step,
        reason: e.to_string(),
    }
}

/// The interfaces a sandbox added, for teardown.
#[derive(Debug)]
pub struct SandboxNetwork {
    host_veth: String,
    host_netns: Option<PathBuf>,
}

/// Interface names for sandbox `id`: host end and (temporary) sandbox end, under 16 bytes.
fn veth_names(id: &str) -> (String, String) {
    // FNV-1a keeps names short and stable for any sandbox id.
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (format!("pvh{h:08x}"), format!("pvc{h:08x}"))
}

/// Runs `f` with a netlink handle of the namespace at `netns` (or the caller's own).
fn in_netns<T: Send + 'static>(
    netns: Option<&Path>,
    f: impl AsyncFnOnce(Handle) -> Result<T, NetworkError> + Send + 'static,
) -> Result<T, NetworkError> {
    let netns = netns.map(Path::to_owned);
    let run = move || -> Result<T, NetworkError> {
        if let Some(path) = &netns {
            let ns_err = |source| NetworkError::Namespace {
                path: path.clone(),
                source,
            };
            let file = File::open(path).map_err(ns_err)?;
            // SAFETY: setns on an open namespace descriptor changes only this thread's
            // network namespace; the thread ends with this closure.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(ns_err(io::Error::last_os_error()));
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| NetworkError::Invalid(format!("netlink runtime: {e}")))?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| NetworkError::Invalid(format!("netlink socket: {e}")))?;
            tokio::spawn(conn);
            f(handle).await
        })
    };
    thread::Builder::new()
        .name("netlink".into())
        .spawn(run)
        .map_err(|e| NetworkError::Invalid(format!("netlink thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(NetworkError::Invalid("netlink thread panicked".into())))
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        // The kernel answers ENODEV for a name it does not know.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(netlink(format!("looking up {name}"))(e)),
    }
}

async fn set_up(handle: &Handle, index: u32, what: &str) -> Result<(), NetworkError> {
    let msg = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(netlink(format!("bringing {what} up")))
}

/// Connects the sandbox whose network namespace is `sandbox_netns` to the bridge.
///
/// # Errors
///
/// [`NetworkError`] naming the step that failed; what was added before it is removed again.
pub fn setup(
    id: &str,
    config: &NetworkConfig,
    sandbox_netns: &Path,
) -> Result<SandboxNetwork, NetworkError> {
    if config.prefix_len > 32 || config.bridge.is_empty() || config.bridge.len() > 15 {
        return Err(NetworkError::Invalid(format!("{config:?}")));
    }
    let (host, peer) = veth_names(id);
    let net = SandboxNetwork {
        host_veth: host.clone(),
        host_netns: config.host_netns.clone(),
    };
    let result = setup_inner(config, sandbox_netns, host, peer);
    if result.is_err() {
        let _ = net.teardown();
    }
    result.map(|()| net)
}

fn setup_inner(
    config: &NetworkConfig,
    sandbox_netns: &Path,
    host: String,
    peer: String,
) -> Result<(), NetworkError> {
    let ns_file = File::open(sandbox_netns).map_err(|source| NetworkError::Namespace {
        path: sandbox_netns.to_owned(),
        source,
    })?;
    let (bridge, gateway, prefix) = (config.bridge.clone(), config.gateway, config.prefix_len);
    let peer2 = peer.clone();
    in_netns(config.host_netns.as_deref(), async move |h: Handle| {
        let br = match link_index(&h, &bridge).await? {
            Some(i) => i,
            None => {
                let msg = LinkBridge::new(&bridge).build();
                let created = h.link().add(msg).execute().await;
                match (created, link_index(&h, &bridge).await?) {
                    (Ok(()), Some(i)) => {
                        h.address()
                            .add(i, IpAddr::V4(gateway), prefix)
                            .execute()
                            .await
                            .map_err(netlink(format!("adding {gateway}/{prefix} to {bridge}")))?;
                        i
                    }
                    // Another sandbox starting beside this one created the bridge first; it
                    // gives the bridge its address.
                    (Err(_), Some(i)) => i,
                    (Err(e), None) => return Err(netlink(format!("creating {bridge}"))(e)),
                    (Ok(()), None) => {
                        return Err(NetworkError::Invalid(format!(
                            "bridge {bridge} vanished after creation"
                        )));
                    }
                }
            }
        };
        set_up(&h, br, &bridge).await?;

        let msg = LinkVeth::new(&host, &peer).build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(netlink(format!("creating veth {host}")))?;
        let hi = link_index(&h, &host)
            .await?
            .ok_or_else(|| NetworkError::Invalid(host.clone()))?;
        let pi = link_index(&h, &peer)
            .await?
            .ok_or_else(|| NetworkError::Invalid(peer.clone()))?;
        let msg = LinkUnspec::new_with_index(hi).controller(br).build();
        h.link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink(format!("adding {host} to {bridge}")))?;
        set_up(&h, hi, &host).await?;
        let msg = LinkUnspec::new_with_index(pi)
            .setns_by_fd(ns_file.as_raw_fd())
            .build();
        h.link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink(format!("moving {peer} into the sandbox")))?;
        drop(ns_file);
        Ok(())
    })?;

    let address = config.address;
    in_netns(Some(sandbox_netns), async move |h: Handle| {
        if let Some(lo) = link_index(&h, "lo").await? {
            set_up(&h, lo, "lo").await?;
        }
        let pi = link_index(&h, &peer2)
            .await?
            .ok_or_else(|| NetworkError::Invalid(peer2.clone()))?;
        let msg = LinkUnspec::new_with_index(pi)
            .name("eth0".to_owned())
            .build();
        h.link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink("renaming the sandbox end to eth0"))?;
        h.address()
            .add(pi, IpAddr::V4(address), prefix)
            .execute()
            .await
            .map_err(netlink(format!("adding {address}/{prefix} to eth0")))?;
        set_up(&h, pi, "eth0").await?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        h.route()
            .add(route)
            .execute()
            .await
            .map_err(netlink(format!("default route via {gateway}")))?;
        Ok(())
    })
}

impl SandboxNetwork {
    /// The host end of the sandbox's veth pair.
    pub fn host_interface(&self) -> &str {
        &self.host_veth
    }

    /// Deletes the veth pair; both ends and their routes go with it.
    ///
    /// # Errors
    ///
    /// [`NetworkError`] when the host end exists but cannot be deleted.
    pub fn teardown(&self) -> Result<(), NetworkError> {
        let host = self.host_veth.clone();
        in_netns(self.host_netns.as_deref(), async move |h: Handle| {
            if let Some(i) = link_index(&h, &host).await? {
                h.link()
                    .del(i)
                    .execute()
                    .await
                    .map_err(netlink(format!("deleting {host}")))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_veth_names_fit_and_differ_per_sandbox() {
        let (h1, p1) = veth_names("a-very-long-sandbox-name-0001");
        let (h2, _) = veth_names("a-very-long-sandbox-name-0002");
        assert!(h1.len() <= 15 && p1.len() <= 15);
        assert_ne!(h1, h2);
    }
}
