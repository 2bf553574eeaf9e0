//! `fiscus submit`: one transfer operation through a member's API.

use super::{Conn, ok, print};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Debug, Args)]
pub(crate) struct SubmitCmd {
    #[command(subcommand)]
    op: SubmitOp,
    /// `ordered`, `commit` or `final`.
    #[arg(long, default_value = "commit", global = true)]
    wait: String,
    /// Makes a retry return the first result instead of submitting twice.
    #[arg(long, global = true)]
    idempotency_key: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum SubmitOp {
    /// Allocate from the client's org to a child org (custodial signing).
    Allocate {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount_fen: i64,
        #[arg(long)]
        document: String,
    },
    /// Acknowledge an allocation the client's org received.
    Acknowledge {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        allocation_tx_id: String,
    },
    /// Pay a final recipient, identified by unified social credit code.
    Disburse {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        recipient_uscc: String,
        #[arg(long)]
        recipient_name: String,
        #[arg(long)]
        amount_fen: i64,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        economic_code: String,
    },
    /// Freeze an account (a supervisor's API client only).
    Freeze {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        reason: String,
    },
    /// Unfreeze an account (a supervisor's API client only).
    Unfreeze {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        reason: String,
    },
    /// A correction between two accounts of one program. The contract needs
    /// both orgs' signatures, which custodial signing cannot give: the API
    /// refuses it with `contract.needs_both_parties`; submit a client-signed
    /// envelope carrying both signatures (`POST /v1/transactions`) instead.
    Adjust {
        #[arg(long)]
        org: String,
        #[arg(long)]
        to_org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        amount_fen: i64,
        /// The tx id this corrects.
        #[arg(long)]
        corrects: String,
        #[arg(long)]
        reason: String,
    },
}

pub(crate) async fn submit(cmd: SubmitCmd) -> Result<()> {
    let op = match &cmd.op {
        SubmitOp::Allocate {
            org,
            program,
            to,
            amount_fen,
            document,
        } => json!({"op": "allocate", "from": {"org_code": org, "program_id": program},
                    "to_org_code": to, "amount_fen": amount_fen, "document": document}),
        SubmitOp::Acknowledge {
            org,
            program,
            allocation_tx_id,
        } => json!({"op": "acknowledge", "account": {"org_code": org, "program_id": program},
                    "allocation_tx_id": allocation_tx_id}),
        SubmitOp::Disburse {
            org,
            program,
            recipient_uscc,
            recipient_name,
            amount_fen,
            purpose,
            economic_code,
        } => json!({"op": "disburse", "from": {"org_code": org, "program_id": program},
                    "recipient": {"unified_social_credit_code": recipient_uscc, "name": recipient_name},
                    "amount_fen": amount_fen, "purpose": purpose, "economic_code": economic_code}),
        SubmitOp::Freeze {
            org,
            program,
            reason,
        } => json!({"op": "freeze", "account": {"org_code": org, "program_id": program},
                    "reason": reason}),
        SubmitOp::Unfreeze {
            org,
            program,
            reason,
        } => json!({"op": "unfreeze", "account": {"org_code": org, "program_id": program},
                    "reason": reason}),
        SubmitOp::Adjust {
            org,
            to_org,
            program,
            amount_fen,
            corrects,
            reason,
        } => json!({"op": "adjust", "from": {"org_code": org, "program_id": program},
                    "to": {"org_code": to_org, "program_id": program},
                    "amount_fen": amount_fen, "corrects_tx_id": corrects, "reason": reason}),
    };
    let mut extra = Vec::new();
    if let Some(k) = &cmd.idempotency_key {
        extra.push(("Idempotency-Key", k.as_str()));
    }
    let (status, v) = cmd
        .conn
        .target()?
        .json(
            "POST",
            &format!("/v1/operations?wait={}", cmd.wait),
            cmd.conn.key()?,
            Some(&op),
            &extra,
        )
        .await?;
    let v = ok(status, v)?;
    print(cmd.conn.json, &v, |v| {
        println!(
            "tx {}  {} in block {}{}",
            v["tx_id"].as_str().unwrap_or(""),
            v["state"].as_str().unwrap_or(""),
            v["block_number"],
            v["receipt"]["status"]
                .as_str()
                .map(|s| format!(
                    "  receipt: {s} {}",
                    v["receipt"]["reason"].as_str().unwrap_or("")
                ))
                .unwrap_or_default()
        );
    });
    Ok(())
}
