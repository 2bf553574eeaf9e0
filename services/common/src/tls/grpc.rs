//! gRPC over our own TLS configs: a server-side incoming stream that hands
//! tonic authenticated connections, and a client-side channel connector.

use super::{PeerIdentity, Revocations, TlsError};
use futures::Stream;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::{Channel, Endpoint, server::Connected};

/// How long a peer may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection stays open once its peer's certificate is revoked.
const REVOKED_GRACE: Duration = Duration::from_millis(500);
/// Handshakes in progress at once; more wait in the kernel's accept queue.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;

/// What a handler knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote_addr: Option<SocketAddr>,
    /// `None` when the peer presented no certificate (only possible with `ClientAuth::Optional`).
    pub identity: Option<PeerIdentity>,
}

/// A server-side TLS connection, with the peer's identity read once at handshake.
pub struct PeerStream {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerInfo,
    /// Resolves when the server is killed (the connection then fails at once,
    /// as it would if the process had died) or the peer's certificate is
    /// revoked (the connection is closed; the peer must reconnect, and its
    /// handshake is refused).
    killed: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl PeerStream {
    fn check_killed(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        match self.killed.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection closed: server killed or peer certificate revoked",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(e) = this.check_killed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(e) = this.check_killed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The peer identity of the connection a request arrived on.
pub fn peer_identity<T>(req: &tonic::Request<T>) -> Option<&PeerIdentity> {
    req.extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.identity.as_ref())
}

/// Admits only node certificates of `member`: a member's own services calling
/// each other (ledger-store → contract-executor, gossip-gateway → ledger-store).
/// `forbidden` and `unauthenticated` are the callee's stable error codes.
pub fn require_own_node<T>(
    req: &tonic::Request<T>,
    member: &str,
    forbidden: &'static str,
    unauthenticated: &'static str,
) -> Result<(), tonic::Status> {
    use crate::error::{ErrorKind, ServiceError};
    match peer_identity(req) {
        Some(p) if p.member == member && p.role == fiscus_proto::pb::types::Role::Node => Ok(()),
        Some(p) => Err(ServiceError::new(
            ErrorKind::PermissionDenied,
            forbidden,
            format!(
                "{} ({:?}) is not a node of member {member}, the only caller allowed",
                p.member, p.role
            ),
        )
        .into()),
        None => Err(ServiceError::new(
            ErrorKind::Unauthenticated,
            unauthenticated,
            "no client certificate",
        )
        .into()),
    }
}

/// Accepts TCP connections, completes TLS handshakes concurrently (bounded,
/// with a timeout) and yields the authenticated streams for
/// `tonic::transport::Server::serve_with_incoming`. Failed handshakes are
/// logged and dropped; they never stop the server. A connection whose peer
/// certificate `revocations` comes to list is closed (pass the serving
/// context's [`super::TlsContext::revocations`]).
pub fn serve_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    revocations: Arc<Revocations>,
) -> impl Stream<Item = std::io::Result<PeerStream>> + Send + 'static {
    let (_never, kill) = tokio::sync::watch::channel(false);
    // Keep the sender alive for as long as the server, so `kill` never fires.
    let keep = Arc::new(_never);
    serve_incoming_until(listener, config, revocations, kill, Some(keep))
}

/// Like [`serve_incoming`], and every connection it accepted fails at once when
/// `kill` turns true: a process crash, simulated in process (tests).
pub fn serve_incoming_until(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    revocations: Arc<Revocations>,
    kill: tokio::sync::watch::Receiver<bool>,
    keep_alive: Option<Arc<tokio::sync::watch::Sender<bool>>>,
) -> impl Stream<Item = std::io::Result<PeerStream>> + Send + 'static {
    let acceptor = TlsAcceptor::from(config);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            // Stop accepting (and release the port) once the server is gone.
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            let (tcp, remote) = match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            // Small gRPC replies must not wait for Nagle's algorithm and the
            // peer's delayed ACK (measured: 40-50 ms per unary call).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(%remote, error = %e, "could not disable Nagle's algorithm");
            }
            let acceptor = acceptor.clone();
            let conn_tx = tx.clone();
            let mut conn_kill = kill.clone();
            let keep = keep_alive.clone();
            let revocations = revocations.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let identity = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|leaf| PeerIdentity::from_der(leaf).ok());
                        let serial = identity.as_ref().map(|i| i.serial.clone());
                        if let Some(s) = serial.as_deref()
                            && revocations.is_revoked(s)
                        {
                            tracing::info!(%remote, "refused a connection by a revoked certificate");
                            return;
                        }
                        let info = PeerInfo {
                            remote_addr: Some(remote),
                            identity,
                        };
                        let killed = Box::pin(async move {
                            let _keep = keep;
                            let revoked = async {
                                match serial {
                                    Some(s) => {
                                        revocations.revoked(&s).await;
                                        // Let an answer in flight (such as the
                                        // CA's reply to a holder revoking its
                                        // own certificate) leave first.
                                        tokio::time::sleep(REVOKED_GRACE).await;
                                    }
                                    None => std::future::pending().await,
                                }
                            };
                            tokio::select! {
                                _ = conn_kill.wait_for(|k| *k) => {}
                                () = revoked => tracing::info!(%remote, "closing a connection: its peer certificate was revoked"),
                            }
                        });
                        let _ = conn_tx
                            .send(Ok(PeerStream {
                                inner: tls,
                                info,
                                killed,
                            }))
                            .await;
                    }
                    Ok(Err(e)) => tracing::info!(%remote, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                }
            });
            if tx.is_closed() {
                return;
            }
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Opens a gRPC channel to `addr` (`host:port`) over mutual TLS, checking
/// that the server's certificate has `server_name` among its SANs.
pub async fn connect_channel(
    addr: &str,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, TlsError> {
    let (endpoint, connector) = tls_endpoint(addr, server_name, config)?;
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| TlsError::Connect {
            endpoint: addr.to_owned(),
            message: format!("{e}: {}", source_chain(&e)),
        })
}

/// Like [`connect_channel`], but connects on first use (and again after a
/// failure), so a service can start before the peer it calls is up: calls
/// fail with UNAVAILABLE until it is. Only the address and name are checked
/// here.
pub fn lazy_channel(
    addr: &str,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, TlsError> {
    let (endpoint, connector) = tls_endpoint(addr, server_name, config)?;
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// The endpoint settings every channel shares, and the connector that opens
/// its connections.
fn tls_endpoint(
    addr: &str,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(Endpoint, TlsConnect), TlsError> {
    let err = |m: String| TlsError::Connect {
        endpoint: addr.to_owned(),
        message: m,
    };
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
        .map_err(|e| err(format!("invalid server name {server_name:?}: {e}")))?;
    // The scheme is http because TLS is done by the connector, not by tonic.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| err(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        // A peer that vanished without closing the connection is noticed in seconds.
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    let connect = TlsConnect {
        connector: TlsConnector::from(config),
        name,
        target: addr.to_owned(),
    };
    Ok((endpoint, connect))
}

/// Opens TCP to `target` and runs the TLS handshake against `name`.
#[derive(Clone)]
struct TlsConnect {
    connector: TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
    target: String,
}

type ClientIo = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower::Service<http::Uri> for TlsConnect {
    type Response = ClientIo;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<ClientIo, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let TlsConnect {
            connector,
            name,
            target,
        } = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&target).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out.join(": ")
}
