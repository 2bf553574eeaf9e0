//! A small HTTP/1.1 client for the exchange-adapter's JSON API (the devnet
//! demo and the client subcommands talk to adapters on the member's network).

use anyhow::{Context, Result};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request to a loopback adapter; returns the status and JSON body.
pub(crate) async fn http(
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
pub(crate) async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<(u16, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
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
        .context("no end of headers in the reply")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status in the reply")?;
    let mut payload = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    Ok((status, payload))
}

/// `http://host:port` (or `host:port`) as a socket address.
pub(crate) fn api_addr(api: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let hostport = api
        .strip_prefix("http://")
        .unwrap_or(api)
        .trim_end_matches('/');
    if api.starts_with("https://") {
        anyhow::bail!(
            "{api}: the client speaks plain HTTP to the member's adapter; https is not built yet"
        );
    }
    hostport
        .to_socket_addrs()
        .with_context(|| format!("{api} is not host:port"))?
        .next()
        .with_context(|| format!("{api} resolves to no address"))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || eol + 2 + size > b.len() {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}
