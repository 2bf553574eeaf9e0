//! The committer: the only path into the ledger. Blocks from the orderer
//! follower, gossip pushes and anti-entropy pulls arrive on one bounded inbox
//! and are committed in height order, each linked to the last; a run queued
//! while catching up goes to the ledger as one atomic batch.

use crate::chain::{Refusal, Verified};
use crate::node::{Incoming, Node, Source, lock};
use fiscus_common::codes;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::ledger::{ChainInfoRequest, CommitBlockResponse};
use fiscus_proto::pb::types::Block;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::Instrument as _;

/// The only path into the ledger: blocks in height order, each linked to the last.
pub(crate) async fn committer(node: Arc<Node>, mut rx: mpsc::Receiver<Incoming>) {
    let mut pending: BTreeMap<u64, (Verified, Source)> = BTreeMap::new();
    let mut last_report = Instant::now();
    let mut since_report = 0u64;
    let mut last_unavailable: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        // Take everything already queued: consecutive blocks commit as one run.
        let mut batch = vec![first];
        while batch.len() < node.cfg.max_pending_blocks {
            match rx.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let (h, _) = *lock(&node.head);
        for Incoming::Block(v, source) in batch {
            if v.number > h && v.number <= h + node.cfg.max_pending_blocks as u64 {
                pending.entry(v.number).or_insert((*v, source));
            }
        }
        loop {
            // The run of consecutive, linked blocks from the head on.
            let (h, hash) = *lock(&node.head);
            let mut run: Vec<(Verified, Source)> = Vec::new();
            let mut prev = hash;
            while run.len() < MAX_COMMIT_RUN {
                let n = h + 1 + run.len() as u64;
                let Some((v, source)) = pending.remove(&n) else {
                    break;
                };
                if v.prev_hash != prev {
                    node.blame(&source, &Refusal::BadLink(v.number, n - 1));
                    break;
                }
                prev = v.hash;
                run.push((v, source));
            }
            if run.is_empty() {
                break;
            }
            // One span per run: the ledger's commit (through the call's
            // metadata) and each block's events are its children; it links to
            // the submissions the blocks carry.
            let span = tracing::info_span!(
                "gateway.commit_blocks",
                fiscus.member = %node.me,
                fiscus.block = run[0].0.number,
                fiscus.blocks = run.len(),
            );
            let links: Vec<(Vec<u8>, Vec<u8>)> = run
                .iter()
                .flat_map(|(v, _)| &v.block.trace_links)
                .take(fiscus_proto::limits::MAX_TRACE_LINKS)
                .map(|l| (l.trace_id.clone(), l.span_id.clone()))
                .collect();
            fiscus_common::telemetry::add_links(&span, &links);
            match commit_run(&node, &run, &span)
                .instrument(span.clone())
                .await
            {
                Ok((committed, refused)) => {
                    if !committed.is_empty() && last_unavailable.take().is_some() {
                        tracing::warn!("ledger-store commits again");
                    }
                    let done = committed.len();
                    for ((v, source), resp) in run.iter().zip(committed) {
                        *lock(&node.head) = (v.number, v.hash);
                        node.committed(v, source, resp)
                            .instrument(span.clone())
                            .await;
                        since_report += 1;
                    }
                    let mut rest = run.into_iter().skip(done);
                    match refused.as_deref() {
                        None => {}
                        Some(codes::ledger::NOT_NEXT) => {
                            // Someone else fed the ledger: take its head.
                            resync_head(&node).await;
                        }
                        Some(codes::ledger::BAD_BLOCK) => {
                            if let Some((_, source)) = rest.next() {
                                node.blame(
                                    &source,
                                    &Refusal::Malformed("the ledger refused the block".into()),
                                );
                            }
                        }
                        Some(code) => {
                            // Not the block's fault (e.g. this build lacks a contract version).
                            tracing::error!(code, "the ledger cannot commit; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    for (v, source) in rest {
                        pending.insert(v.number, (v, source));
                    }
                }
                Err(s) => {
                    // The ledger is unavailable: keep the blocks and retry
                    // shortly; say so once per outage, then every 30 s.
                    if last_unavailable.is_none_or(|t| t.elapsed() >= UNAVAILABLE_LOG_EVERY) {
                        tracing::warn!(error = %s.message(), "ledger-store cannot commit now; retrying");
                        last_unavailable = Some(Instant::now());
                    }
                    for (v, source) in run {
                        pending.insert(v.number, (v, source));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) && since_report > 0 {
            let rate = since_report as f64 / last_report.elapsed().as_secs_f64();
            tracing::info!(
                height = node.height(),
                blocks_per_s = rate as u64,
                pending = pending.len(),
                "committing"
            );
            last_report = Instant::now();
            since_report = 0;
        }
    }
}

/// How often a ledger that cannot commit is logged again.
const UNAVAILABLE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Blocks handed to the ledger in one atomic commit while catching up.
const MAX_COMMIT_RUN: usize = 64;

/// Commits a run of blocks: one block alone, or several in one ledger batch.
/// Returns the answers for the committed ones and the error code of the first
/// refused one.
async fn commit_run(
    node: &Arc<Node>,
    run: &[(Verified, Source)],
    span: &tracing::Span,
) -> Result<(Vec<CommitBlockResponse>, Option<String>), tonic::Status> {
    let mut ingest = node.ingest.clone();
    if run.len() == 1 {
        let mut req = tonic::Request::new(Block::clone(&run[0].0.block));
        fiscus_common::telemetry::inject_metadata(span, req.metadata_mut());
        return match ingest.commit_block(req).await {
            Ok(r) => Ok((vec![r.into_inner()], None)),
            Err(s) => match error_code(&s) {
                Some(code) if code.starts_with("ledger.") && !retry_later(code) => {
                    Ok((Vec::new(), Some(code.to_owned())))
                }
                _ => Err(s),
            },
        };
    }
    let mut req = tonic::Request::new(fiscus_proto::pb::ledger::CommitBlocksRequest {
        blocks: run.iter().map(|(v, _)| Block::clone(&v.block)).collect(),
    });
    fiscus_common::telemetry::inject_metadata(span, req.metadata_mut());
    let r = ingest.commit_blocks(req).await?.into_inner();
    let refused = (!r.error_code.is_empty()).then_some(r.error_code);
    match refused.as_deref() {
        Some(code) if retry_later(code) && r.committed.is_empty() => {
            Err(tonic::Status::unavailable(r.error))
        }
        _ => Ok((r.committed, refused)),
    }
}

/// Codes that say the ledger could not commit now, through no fault of the
/// block: keep the blocks and retry.
fn retry_later(code: &str) -> bool {
    [
        codes::ledger::DISK_FULL,
        codes::ledger::EXECUTOR_UNAVAILABLE,
        codes::ledger::INTERNAL,
    ]
    .contains(&code)
}

/// Takes the ledger's head after someone else fed it.
async fn resync_head(node: &Arc<Node>) {
    if let Ok(info) = node
        .ledger
        .clone()
        .get_chain_info(ChainInfoRequest {})
        .await
    {
        let info = info.into_inner();
        if let Ok(hash) = Hash32::from_slice("hash", &info.last_block_hash) {
            *lock(&node.head) = (info.height, hash);
        }
    }
}

fn error_code(s: &tonic::Status) -> Option<&str> {
    s.metadata()
        .get(fiscus_common::error::GRPC_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
}
