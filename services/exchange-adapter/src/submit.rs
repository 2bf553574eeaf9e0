//! The checks every submit path applies before a transaction is ordered:
//! REST envelopes and operations, gRPC `SubmitStream` and bulk import all
//! call these, and the contract's own rule functions
//! (`fiscus_contract_executor::rules`) decide what a call may do, so the API,
//! the import and the chain cannot disagree.

use crate::api::Api;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::{Rejection, rules};
use fiscus_proto::envelope::CheckedTx;
use fiscus_proto::pb::transfer::TransferCall;
use fiscus_proto::pb::types::{TxStatus, tx_payload::Call};
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
    rules::check_call(call, signers, &api.registry, None).map_err(rejected)
}

impl Api {
    /// The org the chain will see as the signer of a custodial envelope.
    pub(crate) fn custodial_signers(&self, c: &crate::clients::Custodial) -> BTreeSet<String> {
        self.signers
            .get(&c.cert_id)
            .map(|(org, _)| org.clone())
            .into_iter()
            .collect()
    }
}

/// A client-signed envelope: the consortium, every signature by a known
/// certificate that verifies, the creator's certificate of the caller's
/// org, and the contract's rules for the call.
pub(crate) fn check_envelope(
    api: &Api,
    tx: &CheckedTx,
    caller_org: &str,
) -> Result<(), ServiceError> {
    if tx.payload.consortium_id != api.consortium_id {
        return Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            "tx.wrong_consortium",
            format!(
                "the payload names consortium {:?}; this is {:?}",
                tx.payload.consortium_id, api.consortium_id
            ),
        ));
    }
    let mut signers = BTreeSet::new();
    for s in &tx.signatures {
        let (org, key) = api.signers.get(&s.cert_id).ok_or_else(|| {
            ServiceError::new(
                ErrorKind::PermissionDenied,
                "tx.unknown_certificate",
                format!("certificate {} is not a known signer", s.cert_id),
            )
        })?;
        if s.cert_id == tx.creator_cert_id && org != caller_org {
            return Err(ServiceError::new(
                ErrorKind::PermissionDenied,
                "api.wrong_org",
                format!(
                    "the envelope is signed for org {org}; the caller acts for org {caller_org}"
                ),
            ));
        }
        fiscus_proto::sign::verify(key, &tx.payload_bytes, &s.signature).map_err(|_| {
            ServiceError::new(
                ErrorKind::InvalidArgument,
                "tx.bad_signature",
                format!("the signature by certificate {} does not verify", s.cert_id),
            )
        })?;
        signers.insert(org.clone());
    }
    match &tx.payload.call {
        Some(Call::Transfer(call)) => check_call(api, call, &signers),
        // Governance rules need the proposal's state; the contract decides.
        Some(Call::Governance(_)) => Ok(()),
        None => Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            "tx.bad_encoding",
            "the payload names no contract call",
        )),
    }
}
