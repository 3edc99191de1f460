//! Byte streams to the agent: a Unix socket into a namespace sandbox, vsock into a micro-VM.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

/// A byte stream to one agent.
pub trait Transport: Send {
    /// Opens the stream: a read half and a write half.
    ///
    /// # Errors
    ///
    /// Fails when the agent cannot be reached.
    fn open(&mut self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)>;
}

/// The host's end of the socket pair handed to a namespace sandbox's agent.
pub struct UnixTransport {
    stream: Option<UnixStream>,
}

impl UnixTransport {
    /// Wraps a connected stream.
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream: Some(stream),
        }
    }
}

impl Transport for UnixTransport {
    fn open(&mut self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        let s = self
            .stream
            .take()
            .ok_or_else(|| io::Error::other("socket already opened"))?;
        let w = s.try_clone()?;
        Ok((Box::new(s), Box::new(w)))
    }
}

/// vsock to the agent of a micro-VM (guest context id, port).
pub struct VsockTransport {
    /// The guest's context id.
    pub cid: u32,
    /// The agent's port, [`podvisor_agent::runtime::pid1::VSOCK_PORT`].
    pub port: u32,
}

impl VsockTransport {
    /// Whether the VMM can carry vsock yet.
    pub fn available() -> bool {
        // TODO: true once podvisor-vmm has a virtio-vsock device.
        false
    }
}

impl Transport for VsockTransport {
    fn open(&mut self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        // TODO: connect through the VMM's vsock device — when podvisor-vmm gains virtio-vsock.
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "vsock to guest cid {} port {}: the VMM has no virtio-vsock device yet",
                self.cid, self.port
            ),
        ))
    }
}
