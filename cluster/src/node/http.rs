//! A small HTTP/1.1 client for the node agent's server (see [`super::server`]).
//!
//! The node agent answers `GET /logs/...` and `POST /exec/...` with a streamed body (chunked,
//! or delimited by the connection's end). This reads the status line and headers and hands the
//! body out as a [`Read`] that decodes chunks as they arrive, so a followed log and an exec's
//! output reach the caller the moment the container writes them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::client::NodeClientError;

type Result<T> = std::result::Result<T, NodeClientError>;

/// A response whose body is still being read.
pub(super) struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Box<dyn Read + Send>,
}

/// Sends one request to the agent at `addr` and returns the response once its headers
/// arrived.
///
/// # Errors
/// [`NodeClientError::Agent`] when the agent cannot be reached or answers with something that is not
/// HTTP.
pub(super) fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> Result<Response> {
    let unreachable =
        |e: std::io::Error| NodeClientError::Agent(format!("node agent at {addr}: {e}"));
    let sa = addr
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| {
            NodeClientError::Agent(format!("node agent address {addr} resolves to nothing"))
        })?;
    let stream = TcpStream::connect_timeout(&sa, Duration::from_secs(3)).map_err(unreachable)?;
    let mut writer = stream.try_clone().map_err(unreachable)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    writer
        .write_all(head.as_bytes())
        .and_then(|()| writer.write_all(body))
        .map_err(unreachable)?;
    writer.flush().map_err(unreachable)?;

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(unreachable)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| NodeClientError::Agent(format!("node agent at {addr} answered {line:?}")))?;
    let mut chunked = false;
    let mut length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(unreachable)? == 0 {
            break;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            }
        }
    }
    let body: Box<dyn Read + Send> = match (chunked, length) {
        (true, _) => Box::new(Chunked {
            inner: reader,
            left: 0,
            done: false,
        }),
        (false, Some(n)) => Box::new(reader.take(n)),
        (false, None) => Box::new(reader),
    };
    Ok(Response { status, body })
}

/// Reads a whole error body as one line.
pub(super) fn error_text(resp: &mut Response) -> String {
    let mut text = String::new();
    let _ = resp.body.read_to_string(&mut text);
    let text = text.trim().replace('\n', " ");
    if text.is_empty() {
        format!("HTTP status {}", resp.status)
    } else {
        text
    }
}

/// Decodes a chunked body.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut size = String::new();
            // The CRLF that ends the previous chunk comes first, except before the first one.
            while size.trim().is_empty() {
                size.clear();
                if self.inner.read_line(&mut size)? == 0 {
                    self.done = true;
                    return Ok(0);
                }
            }
            let hex = size.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(hex, 16).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad chunk {hex:?}"),
                )
            })?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let got = self.inner.read(&mut buf[..n])?;
        if got == 0 {
            self.done = true;
        }
        self.left -= got;
        Ok(got)
    }
}
