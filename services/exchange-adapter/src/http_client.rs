//! A small HTTP/1.1 client over plain TCP or TLS ([`Target`]): the `fiscus`
//! client subcommands and the devnet demo call adapters with it, and the
//! adapter delivers webhooks with it. One request per connection.

use serde_json::Value;
use std::io::{Error, Result};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reply body as JSON; a non-JSON body as a JSON string; nothing as null.
fn json_of(raw: &[u8]) -> Value {
    if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into()))
    }
}

/// One request on an open connection (plain or TLS); `host` goes in `Host:`.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<(u16, Vec<u8>)> {
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
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
    s.flush().await?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A TLS peer that closes without close_notify has still answered.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
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

/// Where requests go: an `http://` or `https://` host, port and path.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as the URL names it, sent as the `Host` header.
    pub authority: String,
    /// The URL's path (what [`Target::send`] posts to).
    pub path: String,
    /// For `https://`: the TLS client configuration (trusted roots) and the
    /// name the server's certificate must carry.
    pub tls: Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl Target {
    /// Parses `url` (`http://` or `https://` host:port and an optional path;
    /// no scheme means `http://`). An `https://` URL needs `ca_file`, the PEM
    /// certificates of the roots to trust for it; no system roots are used.
    pub fn parse(url: &str, ca_file: Option<&std::path::Path>) -> Result<Self> {
        use std::net::ToSocketAddrs as _;
        let (https, rest) = match url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("http://").unwrap_or(url)),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| Error::other(format!("{url}: {authority} is not host:port ({e})")))?
            .next()
            .ok_or_else(|| Error::other(format!("{url} resolves to no address")))?;
        let tls = if https {
            let ca = ca_file.ok_or_else(|| {
                Error::other(format!(
                    "{url}: an https URL needs a CA file (ca_file, or --ca-file for the CLI): the roots to trust"
                ))
            })?;
            let host = authority
                .rsplit_once(':')
                .map_or(authority, |(h, _)| h)
                .trim_matches(['[', ']']);
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
                Error::other(format!("{url}: {host} is not a TLS server name ({e})"))
            })?;
            Some((tls_config(ca)?, name))
        } else {
            None
        };
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            path,
            tls,
        })
    }

    /// A plain-HTTP target at `addr` (the devnet's adapters on loopback).
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            authority: addr.to_string(),
            path: "/".to_owned(),
            tls: None,
        }
    }

    /// One request to the target's own path; returns the status and raw reply body.
    pub async fn send(
        &self,
        method: &str,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>)> {
        self.request(method, &self.path, "", body, extra).await
    }

    /// One request to `path` on the target's host, with an API key unless
    /// `key` is empty; returns the status and raw reply body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>)> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| Error::new(e.kind(), format!("connecting to {}: {e}", self.addr)))?;
        let Some((config, name)) = &self.tls else {
            return exchange(tcp, &self.authority, method, path, key, body, extra).await;
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| Error::new(e.kind(), format!("TLS with {}: {e}", self.authority)))?;
        exchange(tls, &self.authority, method, path, key, body, extra).await
    }

    /// [`Self::request`] with a JSON body and a JSON (or text) answer.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Result<(u16, Value)> {
        let body = body.map(Value::to_string);
        let (status, raw) = self
            .request(method, path, key, body.as_deref(), extra)
            .await?;
        Ok((status, json_of(&raw)))
    }
}

/// TLS 1.2/1.3 client settings that trust exactly the certificates in `ca_file`.
fn tls_config(ca_file: &std::path::Path) -> Result<std::sync::Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca_file)
        .map_err(|e| Error::new(e.kind(), format!("{}: {e}", ca_file.display())))?;
    let certs = fiscus_common::tls::parse_certs(ca_file, &pem).map_err(Error::other)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .map_err(|e| Error::other(format!("{}: {e}", ca_file.display())))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
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
