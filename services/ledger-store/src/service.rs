//! The `Ledger` gRPC service: a member's chain, read-only to clients. Every
//! answer is served at one height (a consistent snapshot) and says which.

use crate::error::LedgerError;
use crate::ledger::CommitSummary;
use crate::ledger::Ledger;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::store::StateStore;
use fiscus_contract_executor::deadlines;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::ledger::ledger_server;
use fiscus_proto::pb::ledger::{
    ChainInfo, ChainInfoRequest, GetBlockRequest, GetHistoryRequest, GetHistoryResponse,
    GetNonceUseRequest, GetNonceUseResponse, GetReceiptRequest, GetStateRequest, GetStateResponse,
    HistoryEntry, KeyValue, ScanStateRequest, ScanStateResponse, TraceRequest, TraceResponse,
    TraceSource, TraceStep,
};
use fiscus_proto::pb::types::{Block, ReceiptProof, TraceLink, TxStatus};
use prost::Message;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Longest key a client may name.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most entries in one scan or history answer.
pub const MAX_PAGE: usize = 1000;
/// Heights one `GetFinalAttestations` call covers at most.
pub const MAX_FINAL_HEIGHTS: u64 = 256;

impl From<LedgerError> for ServiceError {
    fn from(e: LedgerError) -> Self {
        let (kind, code) = match &e {
            LedgerError::NotFound(_) => (ErrorKind::NotFound, codes::ledger::NOT_FOUND),
            LedgerError::NotFinal(_) => (ErrorKind::Conflict, codes::ledger::NOT_FINAL),
            LedgerError::NotNext { .. } => (ErrorKind::FailedPrecondition, codes::ledger::NOT_NEXT),
            LedgerError::Malformed(_)
            | LedgerError::BadLink(_)
            | LedgerError::BadOrdererSignature(_)
            | LedgerError::BadTimestamp(_) => {
                (ErrorKind::InvalidArgument, codes::ledger::BAD_BLOCK)
            }
            LedgerError::NoGenesis | LedgerError::GenesisMismatch | LedgerError::Unsupported(_) => {
                (ErrorKind::FailedPrecondition, codes::ledger::NOT_READY)
            }
            LedgerError::Executor(_) => {
                (ErrorKind::Unavailable, codes::ledger::EXECUTOR_UNAVAILABLE)
            }
            LedgerError::DiskFull { .. } => (ErrorKind::Unavailable, codes::ledger::DISK_FULL),
            LedgerError::Store(_) | LedgerError::Corrupt(_) | LedgerError::Poisoned => {
                (ErrorKind::Internal, codes::ledger::INTERNAL)
            }
        };
        ServiceError::new(kind, code, e.to_string())
    }
}

fn status(e: LedgerError) -> Status {
    ServiceError::from(e).into()
}

fn invalid(code: &'static str, message: impl Into<String>) -> Status {
    ServiceError::new(ErrorKind::InvalidArgument, code, message).into()
}

fn check_key(key: &[u8], field: &str) -> Result<(), Status> {
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(
            codes::ledger::KEY_TOO_LONG,
            format!(
                "{field} is {} bytes; the limit is {MAX_KEY_BYTES}",
                key.len()
            ),
        ));
    }
    Ok(())
}

fn page(limit: u32) -> usize {
    match limit as usize {
        0 => 100,
        n => n.min(MAX_PAGE),
    }
}

/// A page token: the height (8 bytes) and the next start key.
fn decode_token(token: &[u8]) -> Result<Option<(u64, Vec<u8>)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    match token.split_first_chunk::<8>() {
        Some((h, rest)) if rest.len() <= MAX_KEY_BYTES + 1 => {
            Ok(Some((u64::from_be_bytes(*h), rest.to_vec())))
        }
        _ => Err(invalid(
            codes::ledger::BAD_PAGE_TOKEN,
            "the page token is malformed",
        )),
    }
}

#[derive(Debug)]
pub struct LedgerService<S: StateStore> {
    pub ledger: Arc<Ledger<S>>,
}

#[tonic::async_trait]
impl<S: StateStore> ledger_server::Ledger for LedgerService<S> {
    async fn get_chain_info(
        &self,
        _: Request<ChainInfoRequest>,
    ) -> Result<Response<ChainInfo>, Status> {
        let head = self.ledger.head().await.map_err(status)?;
        let crl_number = self
            .ledger
            .chain_state()
            .await
            .map_err(status)?
            .config
            .crl
            .as_ref()
            .map_or(0, |c| c.number);
        Ok(Response::new(ChainInfo {
            crl_number,
            height: head.height,
            last_block_hash: head.hash.to_vec(),
            state_hash: head.state_hash.to_vec(),
            // Reported by the member's gossip-gateway, which sees every member's attestations.
            final_height: self.ledger.final_height().min(head.height),
        }))
    }

    async fn get_block(&self, req: Request<GetBlockRequest>) -> Result<Response<Block>, Status> {
        let req = req.into_inner();
        let n = if req.hash.is_empty() {
            req.number
        } else {
            let h = Hash32::from_slice("hash", &req.hash)
                .map_err(|_| invalid(codes::ledger::BAD_HASH, "hash must be 32 bytes"))?;
            self.ledger.block_number_of(&h).await.map_err(status)?
        };
        let bytes = self.ledger.block(n).await.map_err(status)?;
        let block =
            Block::decode(&bytes[..]).map_err(|e| status(LedgerError::Corrupt(e.to_string())))?;
        Ok(Response::new(block))
    }

    async fn get_receipt(
        &self,
        req: Request<GetReceiptRequest>,
    ) -> Result<Response<ReceiptProof>, Status> {
        let id = Hash32::from_slice("tx id", &req.get_ref().tx_id)
            .map_err(|_| invalid(codes::ledger::BAD_TX_ID, "tx_id must be 32 bytes"))?;
        Ok(Response::new(
            self.ledger
                .receipt_proof(&id, req.get_ref().require_final)
                .await
                .map_err(status)?,
        ))
    }

    async fn get_nonce_use(
        &self,
        req: Request<GetNonceUseRequest>,
    ) -> Result<Response<GetNonceUseResponse>, Status> {
        let r = req.get_ref();
        let creator = Hash32::from_slice("creator cert id", &r.creator_cert_id).map_err(|_| {
            invalid(
                codes::ledger::BAD_CERT_ID,
                "creator_cert_id must be 32 bytes",
            )
        })?;
        let used = self
            .ledger
            .nonce_use(&creator, r.nonce)
            .await
            .map_err(status)?;
        Ok(Response::new(GetNonceUseResponse {
            used: used.is_some(),
            tx_id: used.map(|id| id.to_vec()).unwrap_or_default(),
        }))
    }

    async fn get_block_receipts(
        &self,
        req: Request<GetBlockRequest>,
    ) -> Result<Response<fiscus_proto::pb::ledger::BlockReceipts>, Status> {
        let n = req.get_ref().number;
        let receipts = self.ledger.receipts(n).await.map_err(status)?;
        let bytes = self.ledger.block(n).await.map_err(status)?;
        let block =
            Block::decode(&bytes[..]).map_err(|e| status(LedgerError::Corrupt(e.to_string())))?;
        let header = fiscus_proto::pb::types::BlockHeader::decode(&block.header[..])
            .map_err(|e| status(LedgerError::Corrupt(e.to_string())))?;
        Ok(Response::new(fiscus_proto::pb::ledger::BlockReceipts {
            block_number: n,
            timestamp_ms: header.timestamp_ms,
            receipts,
        }))
    }

    async fn get_state(
        &self,
        req: Request<GetStateRequest>,
    ) -> Result<Response<GetStateResponse>, Status> {
        let req = req.into_inner();
        check_key(&req.key, "key")?;
        let h = self
            .ledger
            .resolve_height(req.at_height)
            .await
            .map_err(status)?;
        let found = self.ledger.state_at(&req.key, h).await.map_err(status)?;
        Ok(Response::new(match found {
            Some((version, value)) => GetStateResponse {
                found: true,
                value,
                version,
                height: h,
            },
            None => GetStateResponse {
                height: h,
                ..GetStateResponse::default()
            },
        }))
    }

    async fn scan_state(
        &self,
        req: Request<ScanStateRequest>,
    ) -> Result<Response<ScanStateResponse>, Status> {
        let req = req.into_inner();
        check_key(&req.prefix, "prefix")?;
        check_key(&req.start, "start")?;
        check_key(&req.end, "end")?;
        let (start, end) = if req.prefix.is_empty() {
            (
                req.start.clone(),
                (!req.end.is_empty()).then(|| req.end.clone()),
            )
        } else {
            (
                req.prefix.clone(),
                fiscus_common::store::prefix_end(&req.prefix),
            )
        };
        let (h, start) = match decode_token(&req.page_token)? {
            Some((h, from)) if from >= start => (h, from),
            Some(_) => {
                return Err(invalid(
                    codes::ledger::BAD_PAGE_TOKEN,
                    "the page token belongs to another scan",
                ));
            }
            None => (
                self.ledger
                    .resolve_height(req.at_height)
                    .await
                    .map_err(status)?,
                start,
            ),
        };
        let (rows, next) = self
            .ledger
            .scan_at(&start, end.as_deref(), h, page(req.limit))
            .await
            .map_err(status)?;
        Ok(Response::new(ScanStateResponse {
            entries: rows
                .into_iter()
                .map(|(key, _, value)| KeyValue {
                    key,
                    value,
                    found: true,
                })
                .collect(),
            height: h,
            next_page_token: next
                .map(|k| [&h.to_be_bytes()[..], &k].concat())
                .unwrap_or_default(),
        }))
    }

    async fn get_history(
        &self,
        req: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let req = req.into_inner();
        check_key(&req.key, "key")?;
        let h = self
            .ledger
            .resolve_height(req.at_height)
            .await
            .map_err(status)?;
        let rows = self
            .ledger
            .history_until(&req.key, h, page(req.limit))
            .await
            .map_err(status)?;
        Ok(Response::new(GetHistoryResponse {
            entries: rows
                .into_iter()
                .map(|(n, v)| HistoryEntry {
                    block_number: n,
                    deleted: v.is_none(),
                    value: v.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn trace(&self, req: Request<TraceRequest>) -> Result<Response<TraceResponse>, Status> {
        let req = req.into_inner();
        let id = Hash32::from_slice("tx id", &req.tx_id)
            .map_err(|_| invalid(codes::ledger::BAD_TX_ID, "tx_id must be 32 bytes"))?;
        let h = self
            .ledger
            .resolve_height(req.at_height)
            .await
            .map_err(status)?;
        let steps = self.ledger.trace_at(&id, h).await.map_err(status)?;
        Ok(Response::new(TraceResponse {
            height: h,
            steps: steps
                .into_iter()
                .map(|(id, rec, alloc)| {
                    let recorded = alloc.as_ref().map_or(("", "", 0), deadlines::recorded);
                    TraceStep {
                        tx_id: id.to_vec(),
                        kind: rec.kind,
                        from_org: rec.from_org,
                        to: rec.to,
                        program_id: rec.program_id,
                        amount_fen: rec.amount_fen,
                        document: rec.document,
                        at_ms: rec.at_ms,
                        sources: rec
                            .sources
                            .into_iter()
                            .map(|s| TraceSource {
                                tx_id: s.source_tx_id,
                                amount_fen: s.amount_fen,
                            })
                            .collect(),
                        due_at_ms: alloc.as_ref().map_or(0, |a| a.due_at_ms),
                        late: alloc.as_ref().is_some_and(|a| a.late),
                        acknowledged: alloc.as_ref().is_some_and(|a| a.acknowledged),
                        deadline_rule: recorded.0.to_owned(),
                        clock_basis: recorded.1.to_owned(),
                        recipient_name: rec.recipient_name,
                        economic_code: rec.economic_code,
                        corrects_tx_id: rec.corrects_tx_id,
                        external_id: rec.external_id,
                    }
                })
                .collect(),
        }))
    }
}

/// Most blocks in one `CommitBlocks` call.
pub const MAX_COMMIT_BATCH: usize = 256;

fn commit_response(
    s: crate::ledger::CommitSummary,
) -> fiscus_proto::pb::ledger::CommitBlockResponse {
    fiscus_proto::pb::ledger::CommitBlockResponse {
        attestation: Some(s.attestation),
        timestamp_ms: s.head.timestamp_ms,
        txs: s
            .receipts
            .into_iter()
            .map(|r| fiscus_proto::pb::ledger::TxOutcome {
                tx_id: r.tx_id,
                tx_index: r.tx_index,
                status: r.status,
                reason: r.reason,
            })
            .collect(),
    }
}

/// `LedgerIngest`: the member's own gossip-gateway hands over checked blocks.
#[derive(Debug)]
pub struct IngestService<S: StateStore> {
    pub ledger: Arc<Ledger<S>>,
    /// Only node certificates of this member may call.
    pub member: String,
    /// Serializes commits with any other writer in the process.
    pub commit_lock: Arc<tokio::sync::Mutex<()>>,
    pub metrics: crate::metrics::Metrics,
    /// Commits pause while the disk is nearly full.
    pub disk: crate::disk::DiskGuard,
}

impl<S: StateStore> IngestService<S> {
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        fiscus_common::tls::require_own_node(
            req,
            &self.member,
            codes::ledger::FORBIDDEN,
            codes::ledger::UNAUTHENTICATED,
        )
    }
}

#[tonic::async_trait]
impl<S: StateStore> fiscus_proto::pb::ledger::ledger_ingest_server::LedgerIngest
    for IngestService<S>
{
    async fn commit_block(
        &self,
        req: Request<Block>,
    ) -> Result<Response<fiscus_proto::pb::ledger::CommitBlockResponse>, Status> {
        self.authorize(&req)?;
        let mut block = req.into_inner();
        let span = commit_span(&self.member, &block);
        let links = std::mem::take(&mut block.trace_links);
        let s = tracing::Instrument::instrument(
            async {
                let _guard = self.commit_lock.lock().await;
                self.disk.check()?;
                self.ledger.commit_wire_block(block).await
            },
            span,
        )
        .await
        .map_err(status)?;
        self.metrics.committed_block(&s);
        trace_rejections(&self.member, &links, &s);
        Ok(Response::new(commit_response(s)))
    }

    async fn commit_blocks(
        &self,
        req: Request<fiscus_proto::pb::ledger::CommitBlocksRequest>,
    ) -> Result<Response<fiscus_proto::pb::ledger::CommitBlocksResponse>, Status> {
        self.authorize(&req)?;
        let mut blocks = req.into_inner().blocks;
        if blocks.len() > MAX_COMMIT_BATCH {
            return Err(invalid(
                codes::ledger::BATCH_TOO_LARGE,
                format!("at most {MAX_COMMIT_BATCH} blocks per call"),
            ));
        }
        let span = tracing::info_span!(
            "ledger_store.commit_blocks",
            fiscus.member = %self.member,
            fiscus.block = blocks.first().map_or(0, header_number),
            fiscus.blocks = blocks.len(),
        );
        let links: Vec<Vec<TraceLink>> = blocks
            .iter_mut()
            .map(|b| std::mem::take(&mut b.trace_links))
            .collect();
        let (done, err) = tracing::Instrument::instrument(
            async {
                let _guard = self.commit_lock.lock().await;
                self.disk.check()?;
                self.ledger.commit_wire_blocks(blocks).await
            },
            span,
        )
        .await
        .map_err(status)?;
        for (s, links) in done.iter().zip(&links) {
            self.metrics.committed_block(s);
            trace_rejections(&self.member, links, s);
        }
        let (error_code, error) = match err {
            None => (String::new(), String::new()),
            Some(e) => {
                let se = ServiceError::from(e);
                (se.code.to_owned(), se.message)
            }
        };
        Ok(Response::new(
            fiscus_proto::pb::ledger::CommitBlocksResponse {
                committed: done.into_iter().map(commit_response).collect(),
                error_code,
                error,
            },
        ))
    }

    async fn get_attestation(
        &self,
        req: Request<fiscus_proto::pb::ledger::GetAttestationRequest>,
    ) -> Result<Response<fiscus_proto::pb::types::SignedAttestation>, Status> {
        self.authorize(&req)?;
        let a = self
            .ledger
            .attestation(req.get_ref().height)
            .await
            .map_err(status)?;
        Ok(Response::new(a))
    }

    async fn get_final_attestations(
        &self,
        req: Request<fiscus_proto::pb::ledger::GetFinalAttestationsRequest>,
    ) -> Result<Response<fiscus_proto::pb::ledger::FinalAttestations>, Status> {
        self.authorize(&req)?;
        let r = req.into_inner();
        if r.to_height < r.from_height || r.to_height - r.from_height >= MAX_FINAL_HEIGHTS {
            return Err(invalid(
                codes::ledger::TOO_MANY,
                format!("from_height..to_height: at most {MAX_FINAL_HEIGHTS} heights, ascending"),
            ));
        }
        let attestations = self
            .ledger
            .final_attestations(r.from_height, r.to_height)
            .await
            .map_err(status)?;
        Ok(Response::new(fiscus_proto::pb::ledger::FinalAttestations {
            attestations,
        }))
    }

    async fn report_final(
        &self,
        req: Request<fiscus_proto::pb::ledger::ReportFinalRequest>,
    ) -> Result<Response<fiscus_proto::pb::ledger::ReportFinalResponse>, Status> {
        self.authorize(&req)?;
        let r = req.into_inner();
        if r.majority.len() > MAX_PAGE {
            return Err(invalid(
                codes::ledger::TOO_MANY,
                format!("at most {MAX_PAGE} attestations per report"),
            ));
        }
        self.ledger
            .record_majority(&r.majority)
            .await
            .map_err(status)?;
        self.ledger.report_final(r.final_height);
        Ok(Response::new(
            fiscus_proto::pb::ledger::ReportFinalResponse {},
        ))
    }
}

/// The number in a wire block's header (0 if it does not decode: validation
/// reports that).
fn header_number(block: &Block) -> u64 {
    <fiscus_proto::pb::types::BlockHeader as prost::Message>::decode(&block.header[..])
        .map_or(0, |h| h.number)
}

/// For each transaction of a sampled submission that this member refused at
/// commit, a span in the submission's own trace (`ledger_store.tx_rejected`,
/// with `fiscus.tx_status`, marked failed), so that a tail-sampling
/// collector keeps the trace of every rejected transaction. Valid ones cost
/// nothing.
pub(crate) fn trace_rejections(member: &str, links: &[TraceLink], s: &CommitSummary) {
    if s.invalid == 0 {
        return;
    }
    for l in links {
        for &i in &l.tx_indexes {
            let Some(r) = s.receipts.get(i as usize) else {
                continue;
            };
            if r.status == TxStatus::Valid as i32 {
                continue;
            }
            let status = fiscus_proto::tx_status_name(r.status);
            let span = tracing::info_span!(
                "ledger_store.tx_rejected",
                fiscus.member = %member,
                fiscus.block = s.head.height,
                fiscus.tx_id = %hex::encode(&r.tx_id),
                fiscus.tx_status = %status,
                otel.status_code = "ERROR",
            );
            fiscus_common::telemetry::set_remote_parent(&span, &l.trace_id, &l.span_id);
        }
    }
}

/// The span of one block's validation, execution and commit at this member,
/// linked to the submissions whose transactions it carries.
pub(crate) fn commit_span(member: &str, block: &Block) -> tracing::Span {
    let span = tracing::info_span!(
        "ledger_store.commit_block",
        fiscus.member = %member,
        fiscus.block = header_number(block),
        fiscus.txs = block.txs.len(),
    );
    let links: Vec<(Vec<u8>, Vec<u8>)> = block
        .trace_links
        .iter()
        .map(|l| (l.trace_id.clone(), l.span_id.clone()))
        .collect();
    fiscus_common::telemetry::add_links(&span, &links);
    span
}

#[cfg(test)]
mod trace_tests {
    use super::*;
    use opentelemetry::trace::{Status as SpanStatus, TracerProvider as _};
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Keeps what it is given.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn receipt(n: u8, status: TxStatus) -> fiscus_proto::pb::types::Receipt {
        fiscus_proto::pb::types::Receipt {
            tx_id: vec![n; 32],
            tx_index: u32::from(n),
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_transaction_refused_at_commit_gets_a_span_in_its_submission_s_trace() {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let summary = CommitSummary {
            head: crate::ledger::Head {
                height: 5,
                hash: Hash32([0; 32]),
                state_hash: Hash32([0; 32]),
                receipts_root: Hash32([0; 32]),
                timestamp_ms: 0,
            },
            valid: 2,
            invalid: 1,
            receipts: vec![
                receipt(0, TxStatus::Valid),
                receipt(1, TxStatus::InsufficientFunds),
                receipt(2, TxStatus::Valid),
            ],
            attestation: Default::default(),
        };
        let links = vec![
            // The submission sent transactions 0 and 1 (and names one past the end).
            TraceLink {
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                tx_indexes: vec![0, 1, 7],
            },
            // Another sent only valid ones.
            TraceLink {
                trace_id: vec![0x11; 16],
                span_id: vec![0x22; 8],
                tx_indexes: vec![2],
            },
        ];
        tracing::subscriber::with_default(subscriber, || {
            trace_rejections("130000", &links, &summary);
        });
        provider.force_flush().unwrap();
        let spans = kept.0.lock().unwrap();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let s = &spans[0];
        assert_eq!(s.name, "ledger_store.tx_rejected");
        assert_eq!(s.span_context.trace_id().to_bytes(), [0xab; 16]);
        assert_eq!(s.parent_span_id.to_bytes(), [0xcd; 8]);
        assert!(
            matches!(s.status, SpanStatus::Error { .. }),
            "{:?}",
            s.status
        );
        let attr = |k: &str| {
            s.attributes
                .iter()
                .find(|a| a.key.as_str() == k)
                .map(|a| a.value.to_string())
        };
        assert_eq!(
            attr("fiscus.tx_status").as_deref(),
            Some("insufficient_funds")
        );
        assert_eq!(attr("fiscus.tx_id"), Some(hex::encode([1u8; 32])));
        assert_eq!(attr("fiscus.member").as_deref(), Some("130000"));
        assert_eq!(attr("fiscus.block").as_deref(), Some("5"));
    }
}
