//! The JSON the REST API answers with (its schemas are in the OpenAPI
//! document): receipts, submissions, blocks, transactions, accounts,
//! programs, histories and traces.

use fiscus_proto::pb::state::Account;
use fiscus_proto::pb::types::Receipt;
use serde::Serialize;
use utoipa::ToSchema;

/// A transaction's receipt: its outcome as this member executed it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptJson {
    pub tx_id: String,
    pub block_number: u64,
    pub tx_index: u32,
    /// `valid`, or why it was rejected, e.g. `insufficient_funds`.
    pub status: String,
    pub reason: String,
    /// Contract events, e.g. `deadline.late`.
    pub events: Vec<String>,
}

pub(crate) fn status_name(s: i32) -> String {
    fiscus_proto::tx_status_name(s)
}

impl From<&Receipt> for ReceiptJson {
    fn from(r: &Receipt) -> Self {
        Self {
            tx_id: hex::encode(&r.tx_id),
            block_number: r.block_number,
            tx_index: r.tx_index,
            status: status_name(r.status),
            reason: r.reason.clone(),
            events: r.events.iter().map(|e| e.name.clone()).collect(),
        }
    }
}

/// What became of a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResult {
    pub tx_id: String,
    /// `ordered`, `committed` or `final`.
    pub state: String,
    pub block_number: u64,
    /// True when this answer repeats an earlier submission of the same tx
    /// (a retry with the same `Idempotency-Key`).
    pub replayed: bool,
    /// Present once the member committed the block (`wait=commit|final`).
    pub receipt: Option<ReceiptJson>,
}

/// The chain head at this member.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainJson {
    pub height: u64,
    pub last_block_hash: String,
    pub state_hash: String,
    /// The highest height a majority of members attested with the same hashes.
    pub final_height: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockJson {
    pub number: u64,
    pub hash: String,
    pub prev_hash: String,
    pub tx_root: String,
    pub timestamp_ms: i64,
    pub orderer_id: String,
    pub tx_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttestationJson {
    pub member: String,
    pub height: u64,
    pub block_hash: String,
    pub state_hash: String,
    pub receipts_root: String,
}

/// A committed transaction with the proof to check it offline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionJson {
    pub receipt: ReceiptJson,
    pub attestations: Vec<AttestationJson>,
    /// The protobuf `fiscus.types.v1.ReceiptProof` (receipt, Merkle proof,
    /// block header, attestations), standard base64: what `fiscus
    /// verify-receipt` checks.
    pub receipt_proof: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountJson {
    pub org_code: String,
    pub program_id: String,
    pub balance_fen: i64,
    pub frozen: bool,
    pub appropriated_fen: i64,
    pub received_fen: i64,
    pub allocated_out_fen: i64,
    pub disbursed_fen: i64,
    pub recovered_out_fen: i64,
    pub recovered_in_fen: i64,
    /// How many parcels of funds (lots) it still holds, spent oldest first
    /// (ADR 0004; each under its own key, ADR 0006).
    pub lots: u64,
}

pub(crate) fn account_json(key: &[u8], a: &Account) -> Option<AccountJson> {
    let key = std::str::from_utf8(key).ok()?.strip_prefix("acct/")?;
    let (org, program) = key.split_once('/')?;
    Some(AccountJson {
        org_code: org.to_owned(),
        program_id: program.to_owned(),
        balance_fen: a.balance_fen,
        frozen: a.frozen,
        appropriated_fen: a.appropriated_fen,
        received_fen: a.received_fen,
        allocated_out_fen: a.allocated_out_fen,
        disbursed_fen: a.disbursed_fen,
        recovered_out_fen: a.recovered_out_fen,
        recovered_in_fen: a.recovered_in_fen,
        lots: a.lot_tail.saturating_sub(a.lot_head) + a.lots.len() as u64,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<AccountJson>,
    /// The height every item on this page (and the following pages) is read at.
    pub height: u64,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramJson {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub functional_code: String,
    pub fiscal_year: u32,
    pub document: String,
    pub owner_org: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramPage {
    pub items: Vec<ProgramJson>,
    pub height: u64,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountVersion {
    /// The block that wrote this version.
    pub block_number: u64,
    pub deleted: bool,
    pub account: Option<AccountJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceSourceJson {
    pub tx_id: String,
    pub amount_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceStepJson {
    pub tx_id: String,
    /// `appropriate`, `allocate`, `disburse`, `recover`, `adjust` or `bundle`.
    pub kind: String,
    pub from_org: String,
    pub to: String,
    pub program_id: String,
    pub amount_fen: i64,
    pub document: String,
    pub at_ms: i64,
    pub sources: Vec<TraceSourceJson>,
    /// Allocations: by when the allocating org had to pass the funds on
    /// (Budget Law art. 52); 0 where no deadline applied.
    pub due_at_ms: i64,
    pub late: bool,
    pub acknowledged: bool,
    /// Allocations: the rule that set the deadline, e.g. `art52.3`.
    pub deadline_rule: String,
    /// `approval`, `receipt` or `appropriation`.
    pub clock_basis: String,
    /// Disbursements: the recipient's name.
    pub recipient_name: String,
    /// Disbursements: the economic classification code (经济分类).
    pub economic_code: String,
    /// Adjustments: the tx id corrected (hex), else empty.
    pub corrects_tx_id: String,
    /// Allocations and disbursements: the sender's own id (e.g. an import
    /// row's `external_id`), else empty.
    pub external_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceJson {
    pub height: u64,
    /// Breadth-first from the asked transaction up to its appropriations.
    pub steps: Vec<TraceStepJson>,
}

/// A ledger trace as the API shows it (the exchange-adapter's `/v1/trace`
/// and analytics' `/v1/analytics/trace`).
pub fn trace_json(r: fiscus_proto::pb::ledger::TraceResponse) -> TraceJson {
    TraceJson {
        height: r.height,
        steps: r
            .steps
            .into_iter()
            .map(|s| TraceStepJson {
                tx_id: hex::encode(s.tx_id),
                kind: s.kind,
                from_org: s.from_org,
                to: s.to,
                program_id: s.program_id,
                amount_fen: s.amount_fen,
                document: s.document,
                at_ms: s.at_ms,
                sources: s
                    .sources
                    .into_iter()
                    .map(|x| TraceSourceJson {
                        tx_id: hex::encode(x.tx_id),
                        amount_fen: x.amount_fen,
                    })
                    .collect(),
                due_at_ms: s.due_at_ms,
                late: s.late,
                acknowledged: s.acknowledged,
                deadline_rule: s.deadline_rule,
                clock_basis: s.clock_basis,
                recipient_name: s.recipient_name,
                economic_code: s.economic_code,
                corrects_tx_id: hex::encode(s.corrects_tx_id),
                external_id: s.external_id,
            })
            .collect(),
    }
}
