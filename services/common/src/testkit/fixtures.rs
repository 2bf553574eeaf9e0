//! Domain fixtures every crate's tests build from: the test org tree (the
//! MOF, Hebei and some of its cities and counties, the Hebei audit office),
//! a genesis over part of it, accounts and programs, signers from a seed,
//! and signed transfer envelopes and blocks. One set, so that a change to
//! what a valid org, program or envelope is lands in one place.

use fiscus_proto::block::BlockDraft;
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::{Hash32, sha256};
use fiscus_proto::pb::transfer::{AccountRef, Program, ProgramKind, TransferCall, transfer_call};
use fiscus_proto::pb::types::{
    Block, ConsortiumConfig, Envelope, Member, Org, OrgLevel, TxPayload, tx_payload::Call,
};
use fiscus_proto::sign::SigningKey;

/// The test org tree: (code, level, parent).
pub const ORG_TREE: [(&str, OrgLevel, &str); 8] = [
    ("000000", OrgLevel::Central, ""),
    ("130000", OrgLevel::Provincial, "000000"),
    ("130100", OrgLevel::Municipal, "130000"),
    ("130102", OrgLevel::County, "130100"),
    ("130200", OrgLevel::Municipal, "130000"),
    ("130300", OrgLevel::Municipal, "130000"),
    ("130400", OrgLevel::Municipal, "130000"),
    ("991300", OrgLevel::Supervisor, "130000"),
];

/// An org record named after its code.
pub fn org(code: &str, level: OrgLevel, parent: &str) -> Org {
    Org {
        code: code.into(),
        name: format!("org {code}"),
        level: level as i32,
        parent: parent.into(),
    }
}

/// The org `code` of [`ORG_TREE`].
///
/// # Panics
/// If `code` is not in the tree (a mistake in the test).
pub fn tree_org(code: &str) -> Org {
    let (c, level, parent) = ORG_TREE
        .iter()
        .find(|(c, _, _)| *c == code)
        .unwrap_or_else(|| panic!("{code} is not in the test org tree"));
    org(c, *level, parent)
}

/// A genesis with the `orgs` of [`ORG_TREE`] and `members` as members.
pub fn genesis(consortium_id: &str, orgs: &[&str], members: &[&str]) -> ConsortiumConfig {
    ConsortiumConfig {
        consortium_id: consortium_id.into(),
        version: 1,
        orgs: orgs.iter().map(|c| tree_org(c)).collect(),
        members: members
            .iter()
            .map(|m| Member {
                org_code: (*m).into(),
                ..Member::default()
            })
            .collect(),
        ..ConsortiumConfig::default()
    }
}

/// The account of `org` in `program`.
pub fn account(org: &str, program: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: program.into(),
    })
}

/// A general-transfer program of fiscal year 2026 with the record the
/// contract requires (functional classification code, document number).
pub fn program(id: &str) -> Program {
    Program {
        id: id.into(),
        name: format!("program {id}"),
        kind: ProgramKind::General as i32,
        functional_code: "2050202".into(),
        fiscal_year: 2026,
        document: "财预〔2026〕12号".into(),
        ..Program::default()
    }
}

/// A signing key and the certificate id it signs under (here the hash of
/// its public key: the tests that use it register it by that id).
#[derive(Debug)]
pub struct Signer {
    pub key: SigningKey,
    pub cert: Hash32,
}

impl Signer {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_seed(&seed);
        Self {
            cert: sha256(&key.public_key()),
            key,
        }
    }
}

/// A transfer call signed by `key` under `cert` with `nonce`.
pub fn transfer_tx(
    consortium_id: &str,
    key: &SigningKey,
    cert: Hash32,
    nonce: u64,
    method: transfer_call::Method,
) -> Envelope {
    let payload = TxPayload {
        consortium_id: consortium_id.into(),
        creator_cert_id: cert.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(Call::Transfer(TransferCall {
            method: Some(method),
        })),
    };
    seal(&payload, &[(key, cert)])
}

/// Block `number` after `prev`, cut at `timestamp_ms` by `orderer-1` and
/// signed by `orderer`.
pub fn block(
    orderer: &Signer,
    number: u64,
    prev: Hash32,
    timestamp_ms: i64,
    txs: Vec<Envelope>,
) -> Block {
    BlockDraft {
        number,
        prev_hash: prev,
        timestamp_ms,
        orderer_id: "orderer-1",
        txs,
    }
    .seal(&orderer.key, orderer.cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parent_in_the_tree_is_in_the_tree_and_above_its_child() {
        for (code, level, parent) in ORG_TREE {
            if level == OrgLevel::Central {
                assert!(parent.is_empty());
                continue;
            }
            let p = tree_org(parent);
            assert!(
                p.level < level as i32 || level == OrgLevel::Supervisor,
                "{code}"
            );
        }
    }

    #[test]
    fn a_transfer_tx_verifies_under_its_signer() {
        let s = Signer::from_seed([3; 32]);
        let env = transfer_tx(
            "t",
            &s.key,
            s.cert,
            1,
            transfer_call::Method::Appropriate(Default::default()),
        );
        let tx = fiscus_proto::envelope::CheckedTx::from_wire(env, &Default::default()).unwrap();
        assert_eq!(tx.signatures.len(), 1);
        assert!(
            fiscus_proto::sign::verify_batch(&[fiscus_proto::sign::SigCheck {
                public_key: &s.key.public_key(),
                message: &tx.payload_bytes,
                signature: &tx.signatures[0].signature,
            }])[0]
                .is_ok()
        );
    }
}
