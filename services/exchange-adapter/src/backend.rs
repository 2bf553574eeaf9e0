//! The member's services the adapter calls over mutual TLS: the ledger-store's
//! `Ledger` queries, and the orderers' `Broadcast` (tried in turn).

use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::connect_channel;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::ledger::{ChainInfo, ChainInfoRequest, GetStateRequest, GetStateResponse};
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use fiscus_proto::pb::orderer::{AckStatus, BroadcastAck};
use fiscus_proto::pb::types::Envelope;
use std::sync::Arc;
use tokio::sync::Mutex;
use tonic::transport::Channel;

#[derive(Debug)]
pub struct Backend {
    tls: Arc<rustls::ClientConfig>,
    ledger_endpoint: Endpoint,
    orderers: Vec<Endpoint>,
    ledger: Mutex<Option<LedgerClient<Channel>>>,
    /// The orderer that answered last, and its client.
    orderer: Mutex<Option<(usize, OrdererClient<Channel>)>>,
    max_message_bytes: usize,
}

/// How the orderers answered a broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ordered {
    /// In block `n`.
    Accepted(u64),
    /// The same tx id was ordered before, in block `n`.
    Duplicate(u64),
}

fn unavailable(what: &str, message: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(
        ErrorKind::Unavailable,
        codes::api::BACKEND_UNAVAILABLE,
        format!("{what}: {message}"),
    )
}

/// A ledger error as the API reports it (the ledger's own code kept).
pub fn from_status(what: &str, s: &tonic::Status) -> ServiceError {
    let kind = match s.code() {
        tonic::Code::NotFound => ErrorKind::NotFound,
        tonic::Code::InvalidArgument => ErrorKind::InvalidArgument,
        tonic::Code::Unavailable => ErrorKind::Unavailable,
        tonic::Code::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Internal,
    };
    let code = match kind {
        ErrorKind::NotFound => codes::api::NOT_FOUND,
        ErrorKind::InvalidArgument => codes::api::INVALID_ARGUMENT,
        ErrorKind::Unavailable => codes::api::BACKEND_UNAVAILABLE,
        ErrorKind::PermissionDenied => codes::api::BACKEND_REFUSED,
        _ => codes::api::BACKEND_ERROR,
    };
    ServiceError::new(kind, code, format!("{what}: {}", s.message()))
}

/// A ledger refusal of a receipt request: "not final yet" keeps its meaning
/// (409 `api.not_final`); anything else as [`from_status`].
pub fn receipt_status(s: &tonic::Status) -> ServiceError {
    let code = s
        .metadata()
        .get(fiscus_common::error::GRPC_CODE_METADATA)
        .and_then(|v| v.to_str().ok());
    if code == Some(codes::ledger::NOT_FINAL) {
        return ServiceError::new(ErrorKind::Conflict, codes::api::NOT_FINAL, s.message());
    }
    from_status("receipt", s)
}

impl Backend {
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        ledger: Endpoint,
        orderers: Vec<Endpoint>,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            tls,
            ledger_endpoint: ledger,
            orderers,
            ledger: Mutex::new(None),
            orderer: Mutex::new(None),
            max_message_bytes,
        }
    }

    /// A client of the member's ledger-store (connected on first use).
    pub async fn ledger(&self) -> Result<LedgerClient<Channel>, ServiceError> {
        let mut slot = self.ledger.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let e = &self.ledger_endpoint;
        let channel = connect_channel(&e.addr, &e.server_name, self.tls.clone())
            .await
            .map_err(|err| unavailable("the ledger-store", err))?;
        let client = LedgerClient::new(channel).max_decoding_message_size(self.max_message_bytes);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// The member's chain head, final height and CRL number.
    pub async fn chain_info(&self) -> Result<ChainInfo, ServiceError> {
        Ok(self
            .ledger()
            .await?
            .get_chain_info(ChainInfoRequest {})
            .await
            .map_err(|s| from_status("chain info", &s))?
            .into_inner())
    }

    /// One contract key's value at `at_height` (0: the head), with the block
    /// that last wrote it (`version`).
    pub async fn state(
        &self,
        key: &[u8],
        at_height: u64,
    ) -> Result<GetStateResponse, ServiceError> {
        Ok(self
            .ledger()
            .await?
            .get_state(GetStateRequest {
                key: key.to_vec(),
                at_height,
            })
            .await
            .map_err(|s| from_status("state", &s))?
            .into_inner())
    }

    /// Broadcasts one envelope and waits for the orderers' decision. Tries each
    /// orderer in turn while they are unreachable or leaderless.
    pub async fn broadcast(&self, env: Envelope) -> Result<Ordered, ServiceError> {
        let tx_id = fiscus_proto::hash::tx_id(&env.payload).to_hex();
        let span =
            tracing::info_span!("adapter.broadcast", otel.kind = "client", fiscus.tx_id = %tx_id);
        tracing::Instrument::instrument(self.broadcast_in(env, &span), span.clone()).await
    }

    async fn broadcast_in(
        &self,
        env: Envelope,
        span: &tracing::Span,
    ) -> Result<Ordered, ServiceError> {
        if self.orderers.is_empty() {
            return Err(unavailable("the orderers", "none configured"));
        }
        let mut last = String::new();
        let start = self.orderer.lock().await.as_ref().map_or(0, |(i, _)| *i);
        for attempt in 0..self.orderers.len() * 2 {
            let i = (start + attempt) % self.orderers.len();
            let mut client = match self.orderer_client(i).await {
                Ok(c) => c,
                Err(e) => {
                    last = e.message;
                    continue;
                }
            };
            let mut req = tonic::Request::new(futures::stream::iter([env.clone()]));
            fiscus_common::telemetry::inject_metadata(span, req.metadata_mut());
            match client.broadcast(req).await {
                Ok(resp) => {
                    let mut acks = resp.into_inner();
                    match acks.message().await {
                        Ok(Some(ack)) => return ack_result(&ack),
                        Ok(None) => last = "the stream ended without an answer".into(),
                        Err(s) => {
                            if s.code() != tonic::Code::Unavailable {
                                return Err(from_status("the orderer", &s));
                            }
                            last = s.message().to_owned();
                        }
                    }
                }
                Err(s) => last = s.message().to_owned(),
            }
            *self.orderer.lock().await = None;
            if attempt + 1 >= self.orderers.len() {
                // Every orderer was tried once: give a new leader a moment.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        Err(unavailable("the orderers", last))
    }

    /// Opens one `Broadcast` stream to a reachable orderer for `envelopes`
    /// (tried in turn to connect); acks come back as the orderers decide.
    pub async fn open_broadcast(
        &self,
        envelopes: impl futures::Stream<Item = Envelope> + Send + 'static,
    ) -> Result<tonic::Streaming<BroadcastAck>, ServiceError> {
        if self.orderers.is_empty() {
            return Err(unavailable("the orderers", "none configured"));
        }
        let start = self.orderer.lock().await.as_ref().map_or(0, |(i, _)| *i);
        let mut last = String::new();
        for attempt in 0..self.orderers.len() {
            let i = (start + attempt) % self.orderers.len();
            match self.orderer_client(i).await {
                Ok(mut client) => {
                    // The stream is one trace: the caller's (a SubmitStream call, an import).
                    let mut req = tonic::Request::new(envelopes);
                    fiscus_common::telemetry::inject_metadata(
                        &tracing::Span::current(),
                        req.metadata_mut(),
                    );
                    return client
                        .broadcast(req)
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(|s| from_status("the orderer", &s));
                }
                Err(e) => last = e.message,
            }
        }
        Err(unavailable("the orderers", last))
    }

    async fn orderer_client(&self, i: usize) -> Result<OrdererClient<Channel>, ServiceError> {
        let mut slot = self.orderer.lock().await;
        if let Some((j, c)) = slot.as_ref()
            && *j == i
        {
            return Ok(c.clone());
        }
        let e = &self.orderers[i];
        let channel = connect_channel(&e.addr, &e.server_name, self.tls.clone())
            .await
            .map_err(|err| unavailable(&format!("orderer {}", e.addr), err))?;
        let client = OrdererClient::new(channel);
        *slot = Some((i, client.clone()));
        Ok(client)
    }
}

fn ack_result(ack: &BroadcastAck) -> Result<Ordered, ServiceError> {
    match AckStatus::try_from(ack.status) {
        Ok(AckStatus::Accepted) => Ok(Ordered::Accepted(ack.block_number)),
        _ if ack.reason_code == codes::tx::DUPLICATE => Ok(Ordered::Duplicate(ack.block_number)),
        _ => {
            let kind = match ack.reason_code.as_str() {
                codes::tx::BAD_SIGNATURE
                | codes::tx::BAD_ENCODING
                | codes::tx::TOO_LARGE
                | codes::tx::WRONG_CONSORTIUM => ErrorKind::InvalidArgument,
                codes::tx::UNKNOWN_CERTIFICATE
                | codes::tx::REVOKED_CERTIFICATE
                | codes::tx::EXPIRED_CERTIFICATE => ErrorKind::PermissionDenied,
                codes::orderer::BUSY => ErrorKind::ResourceExhausted,
                _ => ErrorKind::Unavailable,
            };
            Err(ServiceError::new(
                kind,
                stable(&ack.reason_code),
                format!("the orderers refused the transaction: {}", ack.reason),
            ))
        }
    }
}

/// The orderer's code as a `'static` str for the problem document; codes
/// outside the known set become `tx.refused` (the text keeps the detail).
fn stable(code: &str) -> &'static str {
    const KNOWN: [&str; 10] = [
        codes::tx::BAD_SIGNATURE,
        codes::tx::BAD_ENCODING,
        codes::tx::TOO_LARGE,
        codes::tx::WRONG_CONSORTIUM,
        codes::tx::UNKNOWN_CERTIFICATE,
        codes::tx::REVOKED_CERTIFICATE,
        codes::tx::EXPIRED_CERTIFICATE,
        codes::orderer::BUSY,
        codes::orderer::TIMEOUT,
        codes::orderer::NO_LEADER,
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or(codes::tx::REFUSED)
}
