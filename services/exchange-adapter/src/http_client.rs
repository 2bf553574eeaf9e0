//! A small HTTP/1.1 client over plain TCP: the `fiscus` client subcommands and
//! the devnet demo call adapters with it, and the adapter delivers webhooks
//! with it. One request per connection; no TLS (https is not built yet).

use serde_json::Value;
use std::io::{Error, Result};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request to a loopback adapter; returns the status and JSON body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Result<(u16, Value)> {
    let body = body.map(Value::to_string);
    let (status, raw) = http_raw(addr, method, path, key, body.as_deref(), extra).await?;
    let value = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()))
    };
    Ok((status, value))
}

/// One request with a raw body; returns the status and the raw reply body.
/// An empty `key` sends no `Authorization` header.
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<(u16, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| Error::new(e.kind(), format!("connecting to {addr}: {e}")))?;
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !key.is_empty() {
        req.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::other("no end of headers in the reply"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::other("no status in the reply"))?;
    let mut payload = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    Ok((status, payload))
}

/// `http://host:port[/path]` (or `host:port`) as a socket address and a path.
pub fn parse_url(url: &str) -> Result<(SocketAddr, String)> {
    use std::net::ToSocketAddrs as _;
    if url.starts_with("https://") {
        return Err(Error::other(format!(
            "{url}: only plain http is built yet; put TLS in front"
        )));
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| Error::other(format!("{url}: {hostport} is not host:port ({e})")))?
        .next()
        .ok_or_else(|| Error::other(format!("{url} resolves to no address")))?;
    Ok((addr, path))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        // The sizes come from the peer: never let them overflow.
        let Some(end) = (eol + 2)
            .checked_add(size)
            .filter(|e| size > 0 && *e <= b.len())
        else {
            break;
        };
        out.extend_from_slice(&b[eol + 2..end]);
        b = &b[end.saturating_add(2).min(b.len())..];
    }
    out
}
