//! Framing: the version handshake and length-delimited `postcard` frames.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{HELLO_MAGIC, MAX_FRAME_LEN};

/// Errors of the wire layer.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// Reading or writing the stream failed.
    #[error("connection I/O failed")]
    Io(#[from] io::Error),
    /// The peer did not open with the podvisor magic.
    #[error("peer is not a podvisor agent or host (bad magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// The two sides speak different protocol versions.
    #[error("protocol version mismatch: this side speaks {ours}, the peer speaks {theirs}")]
    VersionMismatch {
        /// The version of this side.
        ours: u32,
        /// The version the peer announced.
        theirs: u32,
    },
    /// A frame announced a length over [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    FrameTooLong(usize),
    /// A frame did not decode as a message.
    #[error("malformed message")]
    Decode(#[from] postcard::Error),
}

/// The first eight bytes each side sends: the magic and a protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the sender speaks.
    pub version: u32,
}

/// Writes a [`Hello`] announcing `version`.
///
/// # Errors
///
/// Fails when the stream cannot be written.
pub fn write_hello<W: Write>(w: &mut W, version: u32) -> Result<(), ProtocolError> {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&HELLO_MAGIC);
    buf[4..].copy_from_slice(&version.to_be_bytes());
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads the peer's [`Hello`].
///
/// # Errors
///
/// Fails with [`ProtocolError::Closed`] at end of stream and [`ProtocolError::BadMagic`] when the
/// peer does not speak podvisor's protocol at all.
pub fn read_hello<R: Read>(r: &mut R) -> Result<Hello, ProtocolError> {
    let mut buf = [0u8; 8];
    read_exact_or_closed(r, &mut buf)?;
    let magic: [u8; 4] = buf[..4].try_into().expect("slice of four bytes");
    if magic != HELLO_MAGIC {
        return Err(ProtocolError::BadMagic(magic));
    }
    let version = u32::from_be_bytes(buf[4..].try_into().expect("slice of four bytes"));
    Ok(Hello { version })
}

fn read_exact_or_closed<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), ProtocolError> {
    match r.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ProtocolError::Closed),
        Err(e) => Err(ProtocolError::Io(e)),
    }
}

/// Reads length-delimited messages from a byte stream.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    /// Wraps a stream whose handshake is done.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::new(),
        }
    }

    /// Reads the next message.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Closed`] at a clean end of stream between frames; otherwise an I/O,
    /// length or decoding error.
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<T, ProtocolError> {
        let mut len = [0u8; 4];
        read_exact_or_closed(&mut self.inner, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME_LEN {
            return Err(ProtocolError::FrameTooLong(len));
        }
        self.buf.resize(len, 0);
        read_exact_or_closed(&mut self.inner, &mut self.buf)?;
        Ok(postcard::from_bytes(&self.buf)?)
    }
}

/// Writes length-delimited messages to a byte stream.
pub struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> FrameWriter<W> {
    /// Wraps a stream whose handshake is done.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::new(),
        }
    }

    /// Writes one message and flushes it.
    ///
    /// # Errors
    ///
    /// Fails when the message is larger than [`MAX_FRAME_LEN`] or the stream cannot be written.
    pub fn write<T: Serialize>(&mut self, msg: &T) -> Result<(), ProtocolError> {
        let body = postcard::to_allocvec(msg)?;
        if body.len() > MAX_FRAME_LEN {
            return Err(ProtocolError::FrameTooLong(body.len()));
        }
        self.buf.clear();
        self.buf
            .extend_from_slice(&(body.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&body);
        self.inner.write_all(&self.buf)?;
        self.inner.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HostMessage, PROTOCOL_VERSION, Request};

    #[test]
    fn test_frames_round_trip_in_order() {
        let mut wire = Vec::new();
        let mut w = FrameWriter::new(&mut wire);
        for id in 0..3 {
            w.write(&HostMessage::Request {
                id,
                request: Request::Shutdown,
            })
            .unwrap();
        }
        let mut r = FrameReader::new(wire.as_slice());
        for id in 0..3 {
            match r.read::<HostMessage>().unwrap() {
                HostMessage::Request { id: got, .. } => assert_eq!(got, id),
            }
        }
        assert!(matches!(
            r.read::<HostMessage>(),
            Err(ProtocolError::Closed)
        ));
    }

    #[test]
    fn test_hello_round_trips_and_rejects_bad_magic() {
        let mut wire = Vec::new();
        write_hello(&mut wire, PROTOCOL_VERSION).unwrap();
        assert_eq!(
            read_hello(&mut wire.as_slice()).unwrap().version,
            PROTOCOL_VERSION
        );
        let bad = b"HTTP/1.1";
        assert!(matches!(
            read_hello(&mut &bad[..]),
            Err(ProtocolError::BadMagic(_))
        ));
    }

    #[test]
    fn test_decoding_arbitrary_bytes_never_panics() {
        // A small deterministic fuzz loop over what a peer could send: random lengths and
        // bodies, and mutations of valid frames.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut valid = Vec::new();
        let msg = HostMessage::Request {
            id: 7,
            request: Request::Stats {
                container: "c".into(),
            },
        };
        FrameWriter::new(&mut valid).write(&msg).unwrap();
        for round in 0..20_000 {
            let mut wire = if round % 2 == 0 {
                let len = (next() % 64) as usize;
                let mut w = (len as u32).to_be_bytes().to_vec();
                w.extend((0..len).map(|_| next() as u8));
                w
            } else {
                let mut w = valid.clone();
                let at = 4 + (next() as usize % (w.len() - 4));
                w[at] = next() as u8;
                w
            };
            wire.truncate(wire.len() - (next() % 3) as usize);
            let mut r = FrameReader::new(wire.as_slice());
            let _ = r.read::<HostMessage>();
            let mut r = FrameReader::new(wire.as_slice());
            let _ = r.read::<crate::protocol::AgentMessage>();
        }
    }

    #[test]
    fn test_frame_fails_when_length_exceeds_limit() {
        let wire = (u32::MAX).to_be_bytes();
        let mut r = FrameReader::new(&wire[..]);
        assert!(matches!(
            r.read::<HostMessage>(),
            Err(ProtocolError::FrameTooLong(_))
        ));
    }
}
