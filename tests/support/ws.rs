//! A WebSocket echo upstream and a bare client, enough to see a tunnel through the proxy carry
//! frames both ways (RFC 6455 text frames under 126 bytes).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A running echo server: answers every text frame with `echo:<text>`. Stops when dropped.
pub struct WsEcho {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl WsEcho {
    /// Starts on an ephemeral port.
    pub async fn start() -> WsEcho {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ws");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        WsEcho { addr, task }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for WsEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut s: TcpStream) {
    let Ok(head) = read_head(&mut s).await else {
        return;
    };
    let Some(key) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| v.trim().to_string())
    }) else {
        return;
    };
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    if s.write_all(reply.as_bytes()).await.is_err() {
        return;
    }
    while let Ok((op, data)) = read_frame(&mut s).await {
        if op == 8 {
            return;
        }
        let mut out = b"echo:".to_vec();
        out.extend_from_slice(&data);
        if write_frame(&mut s, &out, false).await.is_err() {
            return;
        }
    }
}

/// The `Sec-WebSocket-Accept` for a key.
pub fn accept_key(key: &str) -> String {
    let digest = sha1_smol::Sha1::from(format!("{key}{GUID}"))
        .digest()
        .bytes();
    base64(&digest)
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads up to the blank line after the headers.
pub async fn read_head(s: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// (opcode, payload) of the next frame, unmasked.
pub async fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        len = u64::from(s.read_u16().await?);
    } else if len == 127 {
        len = s.read_u64().await?;
    }
    let mask = if h[1] & 0x80 != 0 {
        let mut m = [0u8; 4];
        s.read_exact(&mut m).await?;
        Some(m)
    } else {
        None
    };
    let mut data = vec![0u8; len as usize];
    s.read_exact(&mut data).await?;
    if let Some(m) = mask {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Ok((h[0] & 0x0f, data))
}

/// Writes a text frame (`masked` as a client must).
pub async fn write_frame(s: &mut TcpStream, data: &[u8], masked: bool) -> std::io::Result<()> {
    assert!(data.len() < 126, "short frames only");
    let mut frame = vec![0x81, (if masked { 0x80 } else { 0 }) | data.len() as u8];
    if masked {
        let m = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&m);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
    } else {
        frame.extend_from_slice(data);
    }
    s.write_all(&frame).await
}

/// Opens a WebSocket to `ws://{addr}{path}`; returns the stream after the 101 and the status
/// line the server answered.
pub async fn connect(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("send upgrade");
    let head = read_head(&mut s).await.expect("upgrade answer");
    let status = head.lines().next().unwrap_or_default().to_string();
    (s, status)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_6455_sample_accept_key() {
        assert_eq!(
            super::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
