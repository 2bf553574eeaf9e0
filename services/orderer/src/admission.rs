//! Admission on the leader: shape and size limits, consortium, signer
//! certificate against the CRL, and batched signature checks (on the
//! process's one CPU pool, `fiscus_common::cpu`, ADR 0001). Only admitted
//! envelopes reach the cutter.

use crate::signers::{SignerDirectory, SignerStatus};
use fiscus_common::codes;
use fiscus_proto::envelope::CheckedTx;
use fiscus_proto::hash::TxId;
use fiscus_proto::pb::types::Envelope;
use fiscus_proto::sign::{SigCheck, verify_batch};
use fiscus_proto::{DecodeLimits, Error as WireError};

/// A refusal with its stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub tx_id: Option<TxId>,
    pub code: &'static str,
    pub reason: String,
}

/// (public key, message, signature) triples to verify together.
type Checks = Vec<([u8; 32], Vec<u8>, [u8; 64])>;

/// Batch-verifies `checks` on the CPU pool, one verdict each, in order.
async fn verify_on_pool(
    checks: Checks,
    metrics: crate::metrics::Metrics,
) -> Result<Vec<bool>, fiscus_common::cpu::PoolError> {
    fiscus_common::cpu::run(move || {
        // Time spent verifying, not waiting for a pool thread.
        let _timer = metrics.verify_seconds.start_timer();
        let items: Vec<SigCheck<'_>> = checks
            .iter()
            .map(|(pk, m, s)| SigCheck {
                public_key: pk,
                message: m,
                signature: s,
            })
            .collect();
        verify_batch(&items)
            .into_iter()
            .map(|r| r.is_ok())
            .collect()
    })
    .await
}

#[derive(Debug, Clone)]
pub struct Admission {
    pub consortium_id: String,
    pub limits: DecodeLimits,
    pub signers: SignerDirectory,
    pub metrics: crate::metrics::Metrics,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Admission {
    /// Checks a batch of envelopes; each comes back admitted or refused, in order.
    pub async fn admit(&self, envs: Vec<Envelope>) -> Vec<Result<(TxId, Envelope), Refusal>> {
        let now = now_unix();
        let mut out: Vec<Result<(TxId, Envelope), Refusal>> = Vec::with_capacity(envs.len());
        let mut checks = Vec::new();
        // (index into out, number of signatures)
        let mut owners = Vec::new();
        for env in envs {
            let wire = env.clone();
            let tx = match CheckedTx::from_wire(env, &self.limits) {
                Ok(tx) => tx,
                Err(e) => {
                    let code = match e {
                        WireError::TooLarge { .. } | WireError::TooMany { .. } => {
                            codes::tx::TOO_LARGE
                        }
                        _ => codes::tx::BAD_ENCODING,
                    };
                    out.push(Err(Refusal {
                        tx_id: None,
                        code,
                        reason: e.to_string(),
                    }));
                    continue;
                }
            };
            if tx.payload.consortium_id != self.consortium_id {
                out.push(Err(Refusal {
                    tx_id: Some(tx.tx_id),
                    code: codes::tx::WRONG_CONSORTIUM,
                    reason: format!(
                        "consortium {:?} is not {:?}",
                        tx.payload.consortium_id, self.consortium_id
                    ),
                }));
                continue;
            }
            let mut keys = Vec::new();
            let mut refused = None;
            for s in &tx.signatures {
                match self.signers.lookup_carried(&s.cert_id, &s.certificate, now) {
                    Ok(pk) => keys.push((pk, s.signature)),
                    Err(status) => {
                        let (code, what) = match status {
                            SignerStatus::Unknown => (
                                codes::tx::UNKNOWN_CERTIFICATE,
                                "is not a known consortium certificate",
                            ),
                            SignerStatus::Revoked => (codes::tx::REVOKED_CERTIFICATE, "is revoked"),
                            SignerStatus::Expired => {
                                (codes::tx::EXPIRED_CERTIFICATE, "has expired")
                            }
                        };
                        refused = Some(Refusal {
                            tx_id: Some(tx.tx_id),
                            code,
                            reason: format!("signer {} {what}", s.cert_id),
                        });
                        break;
                    }
                }
            }
            if let Some(r) = refused {
                out.push(Err(r));
                continue;
            }
            owners.push((out.len(), keys.len()));
            for (pk, sig) in keys {
                checks.push((pk, tx.payload_bytes.clone(), sig));
            }
            out.push(Ok((tx.tx_id, wire)));
        }
        if checks.is_empty() {
            return out;
        }
        let verdicts = match verify_on_pool(checks, self.metrics.clone()).await {
            Ok(v) => v,
            Err(e) => {
                // No verifier, no admission: refuse rather than let unchecked txs through.
                for (i, _) in &owners {
                    let id = out[*i].as_ref().ok().map(|(id, _)| *id);
                    out[*i] = Err(Refusal {
                        tx_id: id,
                        code: codes::orderer::INTERNAL,
                        reason: format!("signature check: {e}"),
                    });
                }
                return out;
            }
        };
        let mut at = 0;
        for (i, n) in owners {
            let ok = verdicts[at..at + n].iter().all(|v| *v);
            at += n;
            if !ok {
                let id = out[i].as_ref().ok().map(|(id, _)| *id);
                out[i] = Err(Refusal {
                    tx_id: id,
                    code: codes::tx::BAD_SIGNATURE,
                    reason: "a signature does not verify".into(),
                });
            }
        }
        out
    }
}
