//! The checks every submit path applies before a transaction is ordered:
//! REST envelopes and operations, gRPC `SubmitStream` and bulk import all
//! call these, and the contract's own rule functions
//! (`fiscus_contract_executor::rules`) decide what a call may do, so the API,
//! the import and the chain cannot disagree.

use fiscus_common::codes;
use fiscus_proto::envelope::{CheckedTx, seal_carrying};
use fiscus_proto::hash::{Hash32, sha256};
use fiscus_proto::pb::ledger::{GetNonceUseRequest, GetReceiptRequest};
use fiscus_proto::pb::types::{Receipt, TxPayload, TxStatus, tx_payload::Call};
use prost::Message;
use serde::Deserialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

use crate::backend::Ordered;
use crate::backend::from_status;
use crate::clients::Client;
use crate::clients::Scope;
use crate::context::Api;
use crate::error::err;
use crate::json::ReceiptJson;
use crate::json::SubmitResult;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::{Rejection, governance, rules};
use fiscus_proto::pb::governance::GovernanceCall;
use fiscus_proto::pb::state::ProposalRecord;
use fiscus_proto::pb::transfer::TransferCall;
use std::collections::BTreeSet;

/// A contract rule's refusal as the API reports it, with the contract's code.
pub(crate) fn rejected(r: Rejection) -> ServiceError {
    let kind = match r.status {
        TxStatus::Unauthorized => ErrorKind::PermissionDenied,
        TxStatus::InvalidArgument | TxStatus::BadEncoding => ErrorKind::InvalidArgument,
        _ => ErrorKind::FailedPrecondition,
    };
    ServiceError::new(kind, r.code, r.reason)
}

/// The stateless contract rules for `call` signed by `signers`. The fiscal
/// year of a new program is left to the contract: it is the year of the
/// block that will order the call, which is not known here.
pub(crate) fn check_call(
    api: &Api,
    call: &TransferCall,
    signers: &BTreeSet<String>,
) -> Result<(), ServiceError> {
    rules::check_call(call, signers, &api.orgs(), None).map_err(rejected)
}

impl Api {
    /// The governance contract's own checks of `call` by `signers`
    /// (`fiscus_contract_executor::governance::precheck`), against the
    /// configuration and the proposal at this member's head: a call the
    /// chain would refuse now is refused before it is ordered. The chain
    /// checks again when it executes it.
    pub(crate) async fn check_governance(
        &self,
        call: &GovernanceCall,
        signers: &BTreeSet<String>,
    ) -> Result<(), ServiceError> {
        let config = self.config_at(0).await?;
        let proposal = match governance::voted_proposal(call).map_err(rejected)? {
            Some(id) => self
                .state_at(&fiscus_contract_executor::keys::proposal(&id), 0)
                .await?
                .map(|v| ProposalRecord::decode(&v[..]))
                .transpose()
                .map_err(|e| {
                    err(
                        ErrorKind::Internal,
                        codes::api::BACKEND_ERROR,
                        e.to_string(),
                    )
                })?,
            None => None,
        };
        let next = config.height + 1;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        governance::precheck(
            call,
            signers,
            &config.config,
            proposal.as_ref(),
            (next, now_ms),
        )
        .map_err(rejected)
    }

    /// The org the chain will see as the signer of a custodial envelope.
    pub(crate) fn custodial_signers(&self, c: &crate::clients::Custodial) -> BTreeSet<String> {
        self.signer(&c.cert_id, &c.certificate)
            .map(|(org, _)| org)
            .into_iter()
            .collect()
    }

    /// A signer's org and key: on file, or from the certificate the signature
    /// carries when a consortium root signed it (the ledgers' rule,
    /// `fiscus_common::certs::Roots`). Revocation is the chain's to decide.
    pub(crate) fn signer(&self, cert_id: &Hash32, carried: &[u8]) -> Option<(String, [u8; 32])> {
        if let Some(known) = self.signers.get(cert_id) {
            return Some(known.clone());
        }
        let id = self.roots.carried(cert_id, carried)?;
        let key = id.public_key.ed25519()?;
        Some((id.member, key))
    }
}

/// A client-signed envelope: the consortium, every signature by a known
/// certificate that verifies, the creator's certificate of the caller's
/// org, and the contract's stateless rules for a transfer call. A governance
/// call needs the `govern` scope; its rules need the chain's state, so the
/// caller checks them next with [`Api::check_governance`]. Returns the
/// signing orgs.
pub(crate) fn check_envelope(
    api: &Api,
    tx: &CheckedTx,
    caller_org: &str,
    scopes: &[Scope],
) -> Result<BTreeSet<String>, ServiceError> {
    if tx.payload.consortium_id != api.consortium_id {
        return Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::tx::WRONG_CONSORTIUM,
            format!(
                "the payload names consortium {:?}; this is {:?}",
                tx.payload.consortium_id, api.consortium_id
            ),
        ));
    }
    let mut signers = BTreeSet::new();
    for s in &tx.signatures {
        let (org, key) = api.signer(&s.cert_id, &s.certificate).ok_or_else(|| {
            ServiceError::new(
                ErrorKind::PermissionDenied,
                codes::tx::UNKNOWN_CERTIFICATE,
                format!("certificate {} is not a known signer", s.cert_id),
            )
        })?;
        api.check_not_revoked(&s.cert_id, &org)?;
        if s.cert_id == tx.creator_cert_id && org != *caller_org {
            return Err(ServiceError::new(
                ErrorKind::PermissionDenied,
                codes::api::WRONG_ORG,
                format!(
                    "the envelope is signed for org {org}; the caller acts for org {caller_org}"
                ),
            ));
        }
        fiscus_proto::sign::verify(&key, &tx.payload_bytes, &s.signature).map_err(|_| {
            ServiceError::new(
                ErrorKind::InvalidArgument,
                codes::tx::BAD_SIGNATURE,
                format!("the signature by certificate {} does not verify", s.cert_id),
            )
        })?;
        signers.insert(org.clone());
    }
    match &tx.payload.call {
        Some(Call::Transfer(call)) => check_call(api, call, &signers).map(|()| signers),
        Some(Call::Governance(_)) if !scopes.contains(&Scope::Govern) => Err(err(
            ErrorKind::PermissionDenied,
            codes::api::SCOPE_NOT_GRANTED,
            "a governance call (propose or vote) needs the \"govern\" scope",
        )),
        Some(Call::Governance(_)) => Ok(signers),
        None => Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::tx::BAD_ENCODING,
            "the payload names no contract call",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// Answer once the orderers have put the tx in a block.
    #[default]
    Ordered,
    /// Answer once this member committed the block (the receipt is known).
    Commit,
    /// Answer once a majority of members attested the block.
    Final,
}

/// An `Idempotency-Key` names one operation: used again with another body it
/// is refused before anything is ordered.
pub(crate) fn key_reused(detail: impl std::fmt::Display) -> ServiceError {
    err(
        ErrorKind::FailedPrecondition,
        codes::api::IDEMPOTENCY_KEY_REUSED,
        format!(
            "this Idempotency-Key was already used for a different operation ({detail}); \
             use a new key for a new operation"
        ),
    )
}

impl Api {
    /// Orders `env`, then waits as asked. A duplicate is the first result when
    /// the caller retries with an idempotency key, and a `tx.duplicate`
    /// problem otherwise (a replay).
    pub(crate) async fn order(
        &self,
        tx_id: Hash32,
        env: fiscus_proto::pb::types::Envelope,
        wait: Wait,
        retry: bool,
    ) -> Result<SubmitResult, ServiceError> {
        let (block, replayed) = match self.backend.broadcast(env).await? {
            Ordered::Accepted(n) => (n, false),
            Ordered::Duplicate(n) if retry => (n, true),
            Ordered::Duplicate(n) => {
                return Err(err(
                    ErrorKind::AlreadyExists,
                    codes::tx::DUPLICATE,
                    format!("transaction {tx_id} was already ordered in block {n} (a replay)"),
                ));
            }
        };
        let mut out = SubmitResult {
            tx_id: tx_id.to_hex(),
            state: "ordered".into(),
            block_number: block,
            replayed,
            receipt: None,
        };
        if wait == Wait::Ordered {
            return Ok(out);
        }
        let until = Instant::now() + self.wait_timeout;
        let receipt = self.wait_receipt(&tx_id, until).await?;
        if retry && receipt.reason.starts_with(codes::tx::NONCE_REUSED) {
            // Two requests with one key and different bodies raced past the
            // check before ordering; the chain kept the first.
            return Err(key_reused(format_args!(
                "the chain refused tx {tx_id}: {}",
                receipt.reason
            )));
        }
        out.block_number = receipt.block_number;
        out.receipt = Some(ReceiptJson::from(&receipt));
        out.state = "committed".into();
        if wait == Wait::Final {
            self.wait_final(receipt.block_number, until).await?;
            out.state = "final".into();
        }
        Ok(out)
    }

    async fn wait_receipt(&self, tx: &Hash32, until: Instant) -> Result<Receipt, ServiceError> {
        let mut pause = Duration::from_millis(5);
        loop {
            let mut ledger = self.backend.ledger().await?;
            match ledger
                .get_receipt(GetReceiptRequest {
                    tx_id: tx.to_vec(),
                    require_final: false,
                })
                .await
            {
                Ok(p) => {
                    return Receipt::decode(&p.into_inner().receipt[..]).map_err(|e| {
                        err(
                            ErrorKind::Internal,
                            codes::api::BACKEND_ERROR,
                            e.to_string(),
                        )
                    });
                }
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(from_status("the ledger-store", &s)),
            }
            if Instant::now() >= until {
                return Err(timeout("committed at this member"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn wait_final(&self, height: u64, until: Instant) -> Result<(), ServiceError> {
        let mut pause = Duration::from_millis(5);
        loop {
            if self.backend.chain_info().await?.final_height >= height {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(timeout("final"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

fn timeout(what: &str) -> ServiceError {
    err(
        ErrorKind::Unavailable,
        codes::api::WAIT_TIMEOUT,
        format!("the transaction was ordered but not {what} within the wait limit; query it later"),
    )
}

/// The nonce of `client`'s operation under idempotency key `key`: the same
/// key gives the same nonce, so a retry builds the same transaction, and the
/// chain refuses a second transaction with it (`tx.nonce_reused`).
pub(crate) fn idempotent_nonce(client: &Client, key: &str) -> u64 {
    let h = sha256(format!("{}\u{0}{key}", client.name).as_bytes());
    u64::from_be_bytes(h.0[..8].try_into().unwrap_or_default())
}

impl Api {
    /// The transaction other than `tx_id` that already used the custodial
    /// signer's `nonce` (its idempotency key), if any.
    pub(crate) async fn nonce_used_by_other(
        &self,
        custodial: &crate::clients::Custodial,
        nonce: u64,
        tx_id: &Hash32,
    ) -> Result<Option<Hash32>, ServiceError> {
        let used = self
            .backend
            .ledger()
            .await?
            .get_nonce_use(GetNonceUseRequest {
                creator_cert_id: custodial.cert_id.to_vec(),
                nonce,
            })
            .await
            .map_err(|s| from_status("the ledger-store", &s))?
            .into_inner();
        Ok(Hash32::from_slice("tx id", &used.tx_id)
            .ok()
            .filter(|first| used.used && first != tx_id))
    }
}

/// The envelope the member signs for `client`. With an idempotency key the
/// nonce comes from the client and the key, so a retry builds byte-identical
/// bytes and the same tx id; without one it is random. Returns the tx id, the
/// envelope and its nonce.
pub(crate) fn custodial_envelope(
    api: &Api,
    custodial: &crate::clients::Custodial,
    client: &Client,
    call: Call,
    idempotency_key: Option<&str>,
) -> Result<(Hash32, fiscus_proto::pb::types::Envelope, u64), ServiceError> {
    api.check_not_revoked(&custodial.cert_id, &client.org)?;
    let nonce = match idempotency_key {
        Some(k) => idempotent_nonce(client, k),
        None => rand::random(),
    };
    let payload = TxPayload {
        consortium_id: api.consortium_id.clone(),
        creator_cert_id: custodial.cert_id.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(call),
    };
    // A signer the others may not have on file carries its certificate.
    let carried: &[u8] = if api.signers.contains_key(&custodial.cert_id) {
        &[]
    } else {
        &custodial.certificate
    };
    let env = seal_carrying(&payload, &[(&custodial.key, custodial.cert_id, carried)]);
    Ok((fiscus_proto::hash::tx_id(&env.payload), env, nonce))
}
