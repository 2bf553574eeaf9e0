//! Listening sockets handed over by whoever started this process: systemd
//! socket activation (`LISTEN_FDS`, `LISTEN_FDNAMES`, and `LISTEN_PID` when
//! set), as a `.socket` unit on a bare-metal install or a test harness does.
//! A service that finds a socket under one of its names serves on it instead
//! of binding its configured address, so the address is held from before
//! the process starts until after it exits: a restart never races another
//! process for the port.
//!
//! The inherited sockets are read from the environment once per process and
//! each can be taken once.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Why the inherited sockets could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("LISTEN_FDNAMES names {names} sockets but LISTEN_FDS says {fds}")]
    NameCount { names: usize, fds: usize },
    #[error("inherited socket {name:?} (fd {fd}) is not a TCP listener: {source}")]
    NotTcp {
        name: String,
        fd: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("inherited socket {name:?} cannot be served by tokio: {source}")]
    Unusable {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// The TCP listeners this process inherited, by name.
static INHERITED: OnceLock<Mutex<BTreeMap<String, std::net::TcpListener>>> = OnceLock::new();

fn inherited() -> Result<&'static Mutex<BTreeMap<String, std::net::TcpListener>>, ListenError> {
    if let Some(m) = INHERITED.get() {
        return Ok(m);
    }
    let mut fds = listenfd::ListenFd::from_env();
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|v| v.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut by_name = BTreeMap::new();
    if fds.len() > 0 {
        if names.len() != fds.len() {
            return Err(ListenError::NameCount {
                names: names.len(),
                fds: fds.len(),
            });
        }
        for (i, name) in names.into_iter().enumerate() {
            match fds.take_tcp_listener(i) {
                Ok(Some(l)) => {
                    by_name.insert(name, l);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ListenError::NotTcp {
                        name,
                        fd: 3 + i,
                        source,
                    });
                }
            }
        }
    }
    Ok(INHERITED.get_or_init(|| Mutex::new(by_name)))
}

/// The inherited listener named `name`, ready for tokio (non-blocking), if
/// this process was given one; `None` means bind the configured address.
pub fn take(name: &str) -> Result<Option<tokio::net::TcpListener>, ListenError> {
    let found = inherited()?
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(name);
    let Some(l) = found else { return Ok(None) };
    let to_tokio = |l: std::net::TcpListener| {
        l.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(l)
    };
    to_tokio(l)
        .map(Some)
        .map_err(|source| ListenError::Unusable {
            name: name.to_owned(),
            source,
        })
}

/// Binds `addr`, unless this process inherited a listener named `name`.
pub async fn bind_or_take(
    name: &str,
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener, std::io::Error> {
    match take(name).map_err(std::io::Error::other)? {
        Some(l) => {
            tracing::info!(name, addr = ?l.local_addr().ok(), "serving on an inherited socket");
            Ok(l)
        }
        None => tokio::net::TcpListener::bind(addr).await,
    }
}
