//! The wire protocol between the host and the podvisor agent, version [`PROTOCOL_VERSION`].
//!
//! The same protocol runs over a Unix socket (namespace sandbox) and over vsock (micro-VM). Only
//! the byte stream underneath differs.
//!
//! # Connection
//!
//! 1. The host sends a [`Hello`]: 8 raw bytes, the magic `PDVA` and the protocol version as a
//!    big-endian `u32`. It is kept outside the message encoding so that any future version can
//!    still read it.
//! 2. The agent answers with its own [`Hello`]. If the versions differ, the agent then sends one
//!    [`AgentMessage::Refused`] frame saying why and closes the connection.
//! 3. From then on both sides exchange frames: a big-endian `u32` length, then that many bytes of
//!    one message encoded with `postcard`. A frame is at most [`MAX_FRAME_LEN`] bytes.
//!
//! # Requests, responses and streams
//!
//! Every [`HostMessage::Request`] carries an id chosen by the host. The agent answers each with
//! exactly one [`AgentMessage::Response`] carrying the same id; responses may come in any order,
//! so a long [`Request::Wait`] does not hold back a [`Request::Stats`]. Output of a process streams
//! as [`AgentMessage::Output`] frames, in order per stream. The agent sends every byte a process
//! wrote before it reports that process's [`AgentMessage::Exited`] event.

mod frame;
mod message;

pub use frame::{FrameReader, FrameWriter, Hello, ProtocolError, read_hello, write_hello};
pub use message::*;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The magic that opens a [`Hello`].
pub const HELLO_MAGIC: [u8; 4] = *b"PDVA";

/// The largest frame either side accepts, in bytes.
pub const MAX_FRAME_LEN: usize = 4 << 20;

/// The largest piece of output or input carried by one frame, in bytes.
pub const MAX_CHUNK_LEN: usize = 64 << 10;
