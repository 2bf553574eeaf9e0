//! The gRPC API (`fiscus.exchange.v1.Exchange`) for high-volume clients.
//! Callers authenticate with a consortium client certificate (mutual TLS);
//! an envelope's creator must belong to the caller's org. Signatures are
//! verified by the orderers' admission, which answers `tx.bad_signature`.

use crate::backend::{Ordered, from_status};
use crate::context::Api;
use actix_web::web;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::envelope::CheckedTx;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::exchange::exchange_server::Exchange;
use fiscus_proto::pb::exchange::{
    ConfigRequest, ConfigResponse, ProposalView, ProposalsRequest, ProposalsResponse,
    SubmitResponse, SubmitResult, TraceHop, TraceRequest, TraceResponse, TxStatusRequest,
    TxStatusResponse,
};
use fiscus_proto::pb::ledger::GetReceiptRequest;
use fiscus_proto::pb::orderer::{AckStatus, BroadcastAck};
use fiscus_proto::pb::types::{Envelope, ReceiptProof, Role};
use futures::Stream;
use prost::Message;
use std::pin::Pin;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Clone)]
pub struct ExchangeService {
    pub api: web::Data<Api>,
    /// What a caller with a consortium client certificate may do.
    pub cert_scopes: Vec<crate::clients::Scope>,
}

impl ExchangeService {
    /// The caller's org and scopes, once its certificate's role and this
    /// API's scopes allow `scope`.
    fn caller<T>(
        &self,
        req: &Request<T>,
        scope: crate::clients::Scope,
    ) -> Result<(String, Vec<crate::clients::Scope>), Status> {
        let (org, role) = caller_org(req)?;
        let scopes = crate::context::certificate_scopes(&self.cert_scopes, role);
        if !scopes.contains(&scope) {
            return Err(ServiceError::new(
                ErrorKind::PermissionDenied,
                codes::api::SCOPE_NOT_GRANTED,
                format!(
                    "certificate callers are not granted the {:?} scope here",
                    scope.name()
                ),
            )
            .into());
        }
        Ok((org, scopes))
    }
}

fn caller_org<T>(req: &Request<T>) -> Result<(String, Role), Status> {
    let id = fiscus_common::tls::peer_identity(req).ok_or_else(|| {
        Status::from(ServiceError::new(
            ErrorKind::Unauthenticated,
            codes::api::UNAUTHENTICATED,
            "present a consortium client certificate",
        ))
    })?;
    if !matches!(id.role, Role::Client | Role::Admin) {
        return Err(ServiceError::new(
            ErrorKind::PermissionDenied,
            codes::api::WRONG_ROLE,
            format!(
                "a {:?} certificate may not submit; use a client certificate",
                id.role
            ),
        )
        .into());
    }
    Ok((id.member.clone(), id.role))
}

impl ExchangeService {
    /// The same checks as the REST submit path (`crate::submit`), with the
    /// governance contract's own for a governance call.
    async fn check(
        &self,
        env: Envelope,
        org: &str,
        scopes: &[crate::clients::Scope],
    ) -> Result<(Hash32, Envelope), ServiceError> {
        let tx = CheckedTx::from_wire(env, &self.api.limits).map_err(|e| {
            ServiceError::new(
                ErrorKind::InvalidArgument,
                codes::tx::BAD_ENCODING,
                format!("the envelope does not decode: {e}"),
            )
        })?;
        let signers = crate::submit::check_envelope(&self.api, &tx, org, scopes)?;
        if let Some(fiscus_proto::pb::types::tx_payload::Call::Governance(call)) = &tx.payload.call
        {
            self.api.check_governance(call, &signers).await?;
        }
        Ok((tx.tx_id, tx.to_wire()))
    }
}

fn refused(tx: Option<Hash32>, e: &ServiceError) -> SubmitResult {
    SubmitResult {
        tx_id: tx.map(|t| t.to_vec()).unwrap_or_default(),
        block_number: 0,
        error_code: e.code.to_owned(),
        error: e.message.clone(),
    }
}

fn result_of(ack: &BroadcastAck) -> SubmitResult {
    let accepted = AckStatus::try_from(ack.status) == Ok(AckStatus::Accepted);
    SubmitResult {
        tx_id: ack.tx_id.clone(),
        block_number: ack.block_number,
        error_code: if accepted {
            String::new()
        } else {
            ack.reason_code.clone()
        },
        error: if accepted {
            String::new()
        } else {
            ack.reason.clone()
        },
    }
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<SubmitResult, Status>> + Send>>;

#[tonic::async_trait]
impl Exchange for ExchangeService {
    async fn submit(&self, req: Request<Envelope>) -> Result<Response<SubmitResponse>, Status> {
        let (org, scopes) = self.caller(&req, crate::clients::Scope::Submit)?;
        let (tx_id, env) = self.check(req.into_inner(), &org, &scopes).await?;
        match self.api.backend.broadcast(env).await? {
            Ordered::Accepted(_) => Ok(Response::new(SubmitResponse {
                tx_id: tx_id.to_vec(),
            })),
            Ordered::Duplicate(n) => Err(ServiceError::new(
                ErrorKind::AlreadyExists,
                codes::tx::DUPLICATE,
                format!("transaction {tx_id} was already ordered in block {n}"),
            )
            .into()),
        }
    }

    type SubmitStreamStream = ResultStream;

    async fn submit_stream(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<ResultStream>, Status> {
        let (org, scopes) = self.caller(&req, crate::clients::Scope::Submit)?;
        let mut input = req.into_inner();
        let (up_tx, up_rx) = mpsc::channel::<Envelope>(4096);
        let (out_tx, out_rx) = mpsc::channel::<Result<SubmitResult, Status>>(4096);
        let upstream = tokio_stream::wrappers::ReceiverStream::new(up_rx);
        let mut acks = self.api.backend.open_broadcast(upstream).await?;
        let relay = out_tx.clone();
        tokio::spawn(async move {
            loop {
                match acks.message().await {
                    Ok(Some(ack)) => {
                        if relay.send(Ok(result_of(&ack))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(s) => {
                        let _ = relay.send(Err(s)).await;
                        return;
                    }
                }
            }
        });
        let svc = self.clone();
        tokio::spawn(async move {
            // Dropping `up_tx` at the end closes the orderer stream once its acks are in.
            while let Ok(Some(env)) = input.message().await {
                // The tx id, when the payload is there to hash, names a refusal.
                let id = (!env.payload.is_empty()).then(|| fiscus_proto::hash::tx_id(&env.payload));
                match svc.check(env, &org, &scopes).await {
                    Ok((_, env)) => {
                        if up_tx.send(env).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if out_tx.send(Ok(refused(id, &e))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out_rx),
        )))
    }

    async fn get_tx_status(
        &self,
        req: Request<TxStatusRequest>,
    ) -> Result<Response<TxStatusResponse>, Status> {
        self.caller(&req, crate::clients::Scope::Read)?;
        let mut ledger = self.api.backend.ledger().await?;
        match ledger
            .get_receipt(GetReceiptRequest {
                tx_id: req.into_inner().tx_id,
                require_final: false,
            })
            .await
        {
            Ok(p) => Ok(Response::new(TxStatusResponse {
                committed: true,
                receipt: fiscus_proto::pb::types::Receipt::decode(&p.into_inner().receipt[..]).ok(),
            })),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(Response::new(TxStatusResponse {
                committed: false,
                receipt: None,
            })),
            Err(s) => Err(from_status("receipt", &s).into()),
        }
    }

    async fn get_receipt_proof(
        &self,
        req: Request<TxStatusRequest>,
    ) -> Result<Response<ReceiptProof>, Status> {
        self.caller(&req, crate::clients::Scope::Read)?;
        let mut ledger = self.api.backend.ledger().await?;
        let r = req.into_inner();
        ledger
            .get_receipt(GetReceiptRequest {
                tx_id: r.tx_id,
                require_final: r.require_final,
            })
            .await
            .map_err(|s| crate::backend::receipt_status(&s).into())
    }

    async fn get_config(
        &self,
        req: Request<ConfigRequest>,
    ) -> Result<Response<ConfigResponse>, Status> {
        self.caller(&req, crate::clients::Scope::Read)?;
        let c = self.api.config_at(req.into_inner().height).await?;
        Ok(Response::new(ConfigResponse {
            votes_needed: fiscus_contract_executor::governance::votes_needed(&c.config),
            config: Some(c.config),
            height: c.height,
            changed_at_height: c.changed_at,
        }))
    }

    async fn list_proposals(
        &self,
        req: Request<ProposalsRequest>,
    ) -> Result<Response<ProposalsResponse>, Status> {
        self.caller(&req, crate::clients::Scope::Read)?;
        let r = req.into_inner();
        let (found, config, total) = self
            .api
            .proposals(&r.status, (r.limit > 0).then_some(r.limit))
            .await?;
        Ok(Response::new(ProposalsResponse {
            items: found
                .into_iter()
                .map(|(tx_id, record)| ProposalView {
                    not_voted: crate::governance::not_voted(&record, &config.config),
                    tx_id,
                    record: Some(record),
                })
                .collect(),
            height: config.height,
            total,
            votes_needed: fiscus_contract_executor::governance::votes_needed(&config.config),
        }))
    }

    async fn trace(&self, req: Request<TraceRequest>) -> Result<Response<TraceResponse>, Status> {
        self.caller(&req, crate::clients::Scope::Read)?;
        let mut ledger = self.api.backend.ledger().await?;
        let r = ledger
            .trace(fiscus_proto::pb::ledger::TraceRequest {
                tx_id: req.into_inner().tx_id,
                at_height: 0,
            })
            .await
            .map_err(|s| from_status("trace", &s))?
            .into_inner();
        Ok(Response::new(TraceResponse {
            hops: r
                .steps
                .into_iter()
                .map(|s| TraceHop {
                    tx_id: s.tx_id,
                    from_org: s.from_org,
                    to_org: s.to,
                    program_id: s.program_id,
                    amount_fen: s.amount_fen,
                    block_number: 0,
                })
                .collect(),
        }))
    }
}
