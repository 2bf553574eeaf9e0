//! The campaign's fault-injecting TCP proxies: one listener per directed
//! link (`orderer-1->orderer-2/raft`, `member-130000->orderer-3/client`, …),
//! each forwarding to the endpoint's real address, bound by this process on
//! loopback ports the OS chooses and recorded in the devnet's `links.json`
//! before any service starts (see `devnet::links`).
//!
//! A link is `Up`, `Delayed` (every chunk is passed on that long after it
//! arrived, in both directions) or `Down`: its open connections are cut and
//! new ones are closed as soon as they are accepted. TLS runs end to end through the
//! proxy, which sees only ciphertext. Every loop ends with the proxy.

use crate::devnet::Layout;
use crate::devnet::links::{self, Links};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "ms")]
pub(crate) enum LinkState {
    Up,
    Delayed(u64),
    Down,
}

struct Link {
    state: watch::Sender<LinkState>,
    task: tokio::task::JoinHandle<()>,
}

/// The proxies of one devnet.
pub(crate) struct FaultNet {
    links: BTreeMap<String, Link>,
}

impl Drop for FaultNet {
    fn drop(&mut self) {
        for l in self.links.values() {
            l.task.abort();
        }
    }
}

impl FaultNet {
    /// A proxy for every link between two orderers (raft and client, both
    /// directions) and from every member to every orderer's client port;
    /// returns the proxies and the [`Links`] that route the devnet through
    /// them.
    pub(crate) async fn start(layout: &Layout) -> Result<(Self, Links)> {
        let mut want: Vec<(String, SocketAddr)> = Vec::new();
        for from in &layout.orderers {
            for to in layout.orderers.iter().filter(|o| o.id != from.id) {
                let src = format!("orderer-{}", from.id);
                want.push((links::name(&src, &links::orderer_raft(to.id)), to.raft));
                want.push((links::name(&src, &links::orderer_client(to.id)), to.client));
            }
        }
        for m in &layout.members {
            for o in &layout.orderers {
                want.push((
                    links::name(&links::member(&m.code), &links::orderer_client(o.id)),
                    o.client,
                ));
            }
        }
        let mut net = Self {
            links: BTreeMap::new(),
        };
        let mut routes = Links::default();
        for (name, upstream) in want {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a fault proxy")?;
            routes.via.insert(name.clone(), listener.local_addr()?);
            let (state, rx) = watch::channel(LinkState::Up);
            let task = tokio::spawn(serve(listener, upstream, rx));
            net.links.insert(name, Link { state, task });
        }
        Ok((net, routes))
    }

    /// Every link's name.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.links.keys().map(String::as_str)
    }

    /// Sets the links named to `state`; returns how many there were.
    pub(crate) fn set<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        state: LinkState,
    ) -> usize {
        let mut n = 0;
        for name in names {
            if let Some(l) = self.links.get(name) {
                l.state.send_replace(state);
                n += 1;
            }
        }
        n
    }

    /// Every link up again.
    pub(crate) fn heal(&self) {
        for l in self.links.values() {
            l.state.send_replace(LinkState::Up);
        }
    }
}

async fn serve(listener: TcpListener, upstream: SocketAddr, state: watch::Receiver<LinkState>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: try again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if *state.borrow() == LinkState::Down {
            drop(client);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(Ok(server)) =
                tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)).await
            else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            // The link going down, or either direction ending (EOF, an
            // error), ends the connection: both sockets are dropped.
            tokio::select! {
                () = until_down(state.clone()) => {}
                () = pipe(cr, sw, state.clone()) => {}
                () = pipe(sr, cw, state) => {}
            }
        });
    }
}

/// Returns when the link goes down (or the proxy is gone).
async fn until_down(mut state: watch::Receiver<LinkState>) {
    loop {
        if *state.borrow_and_update() == LinkState::Down {
            return;
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Copies one direction until EOF or an error. Each chunk is stamped when
/// it is read and written no sooner than the link's delay after that: a
/// delay adds latency, it does not cap the throughput.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: watch::Receiver<LinkState>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(256);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((tokio::time::Instant::now(), buf[..n].to_vec()))
                    .await
                    .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((read_at, chunk)) = rx.recv().await {
            let current = *state.borrow();
            if let LinkState::Delayed(ms) = current {
                tokio::time::sleep_until(read_at + Duration::from_millis(ms)).await;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind a one-link proxy: bytes pass while up, a delay
    /// holds them, down cuts the open connection and refuses new ones, up
    /// again lets a new connection through.
    #[tokio::test]
    async fn a_link_passes_delays_and_cuts_on_command() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let (state, rx) = watch::channel(LinkState::Up);
        let link = Link {
            state,
            task: tokio::spawn(serve(listener, upstream, rx)),
        };
        let net = FaultNet {
            links: BTreeMap::from([("a->b".to_owned(), link)]),
        };
        let deadline = Duration::from_secs(10);
        let round_trip = |mut s: TcpStream| async move {
            s.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            let r = tokio::time::timeout(deadline, s.read_exact(&mut got)).await;
            (r.map(|r| r.is_ok()).unwrap_or(false) && &got == b"ping", s)
        };

        let (ok, mut s) = round_trip(TcpStream::connect(proxy).await.unwrap()).await;
        assert!(ok, "bytes pass through an up link");

        assert_eq!(net.set(["a->b"], LinkState::Delayed(300)), 1);
        let t = std::time::Instant::now();
        s.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        // Both directions wait: at least two delays.
        assert!(
            t.elapsed() >= Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );

        assert_eq!(net.set(["a->b", "no-such"], LinkState::Down), 1);
        let mut byte = [0u8; 1];
        let r = tokio::time::timeout(deadline, s.read(&mut byte)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "an open connection is cut: {r:?}"
        );
        let mut fresh = TcpStream::connect(proxy).await.unwrap();
        let r = tokio::time::timeout(deadline, fresh.read(&mut byte)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "a new connection is closed: {r:?}"
        );

        net.heal();
        let (ok, _) = round_trip(TcpStream::connect(proxy).await.unwrap()).await;
        assert!(ok, "bytes pass again after the heal");
        assert_eq!(net.names().collect::<Vec<_>>(), ["a->b"]);
    }
}
