//! Offline receipt verification: a `ReceiptProof` checked against the
//! consortium root, with no network.

use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_ledger_store::Certs;
use fiscus_proto::hash::{Hash32, block_hash};
use fiscus_proto::merkle::{self, InclusionProof};
use fiscus_proto::pb::types::{Attestation, BlockHeader, Receipt, ReceiptProof, TxStatus};
use prost::Message;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct VerifyReceiptCmd {
    /// The receipt proof: protobuf `fiscus.types.v1.ReceiptProof`, raw or base64
    /// (the `receipt_proof` field of `GET /v1/transactions/{id}`).
    #[arg(long)]
    file: PathBuf,
    /// The consortium root certificate (PEM).
    #[arg(long)]
    root: PathBuf,
    /// A directory of certificates (PEM); only member node certificates issued by
    /// the root are accepted as attestation signers.
    #[arg(long)]
    certs_dir: PathBuf,
    #[arg(long)]
    json: bool,
}

/// What a verified receipt proves.
#[derive(Debug)]
pub(crate) struct Verified {
    pub tx_id: String,
    pub status: String,
    pub block_number: u64,
    pub block_hash: Hash32,
    /// Members whose signed attestations cover the receipt.
    pub attested_by: BTreeSet<String>,
}

/// Checks the Merkle proof of the receipt against each attestation's
/// receipts root, the attestation's block hash against the header, and each
/// attestation's signature by a member node certificate issued by the root.
pub(crate) fn verify(proof: &ReceiptProof, certs: &Certs) -> Result<Verified> {
    let receipt = Receipt::decode(&proof.receipt[..]).context("the receipt does not decode")?;
    let header =
        BlockHeader::decode(&proof.block_header[..]).context("the block header does not decode")?;
    if receipt.block_number != header.number {
        bail!(
            "the receipt names block {} but the header is block {}",
            receipt.block_number,
            header.number
        );
    }
    let hash = block_hash(&proof.block_header);
    let p = proof
        .proof
        .as_ref()
        .context("the Merkle proof is missing")?;
    let inclusion = InclusionProof {
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        path: p
            .path
            .iter()
            .map(|h| Hash32::from_slice("proof hash", h))
            .collect::<std::result::Result<_, _>>()?,
    };
    if proof.attestations.is_empty() {
        bail!("the proof carries no attestation");
    }
    let mut attested_by = BTreeSet::new();
    for signed in &proof.attestations {
        let att = Attestation::decode(&signed.attestation[..])
            .context("an attestation does not decode")?;
        let sig = signed
            .signature
            .as_ref()
            .context("an attestation is unsigned")?;
        let cert = Hash32::from_slice("cert id", &sig.cert_id)?;
        let key = certs.public_key(&cert).with_context(|| {
            format!(
                "member {}'s attestation is signed by certificate {cert}, which is not among the root's certificates",
                att.member
            )
        })?;
        let org = certs
            .iter()
            .find(|(id, _, _)| **id == cert)
            .map(|(_, org, _)| org.to_owned())
            .unwrap_or_default();
        if org != att.member {
            bail!(
                "an attestation for member {} is signed by a certificate of {org}",
                att.member
            );
        }
        fiscus_proto::sign::verify(&key, &signed.attestation, &sig.signature).map_err(|_| {
            anyhow::anyhow!(
                "member {}'s attestation signature does not verify",
                att.member
            )
        })?;
        if att.height != header.number || att.block_hash != hash.to_vec() {
            bail!(
                "member {}'s attestation is for another block (height {})",
                att.member,
                att.height
            );
        }
        let root = Hash32::from_slice("receipts root", &att.receipts_root)?;
        merkle::verify(&root, &proof.receipt, &inclusion).map_err(|e| {
            anyhow::anyhow!(
                "the receipt is not under member {}'s receipts root: {e:?}",
                att.member
            )
        })?;
        attested_by.insert(att.member);
    }
    Ok(Verified {
        tx_id: hex::encode(&receipt.tx_id),
        status: TxStatus::try_from(receipt.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("TX_STATUS_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default(),
        block_number: header.number,
        block_hash: hash,
        attested_by,
    })
}

/// Loads the **node** certificates in `dir` that chain to the root in
/// `root_pem`. Client, admin and orderer certificates in the same directory
/// are left out: only a member's node signs attestations.
pub(crate) fn load_certs(root_pem: &Path, dir: &Path) -> Result<Certs> {
    let pem = std::fs::read(root_pem).with_context(|| format!("reading {}", root_pem.display()))?;
    let roots: Vec<Vec<u8>> = fiscus_common::tls::parse_certs(root_pem, &pem)?
        .into_iter()
        .map(|c| c.to_vec())
        .collect();
    let signed_by_root = Certs::load_dir(dir, &roots)?;
    let mut nodes = Certs::default();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "pem") {
            continue;
        }
        let pem = std::fs::read(&path)?;
        let Ok(chain) = fiscus_common::tls::parse_certs(&path, &pem) else {
            continue;
        };
        let Some(leaf) = chain.first() else { continue };
        let Ok(id) = fiscus_common::tls::PeerIdentity::from_der(leaf) else {
            continue;
        };
        if id.role != fiscus_proto::pb::types::Role::Node {
            continue;
        }
        if let Some(key) = signed_by_root.public_key(&id.cert_id) {
            nodes.insert_key(id.cert_id, &id.member, key);
        }
    }
    Ok(nodes)
}

pub(crate) fn read_proof(path: &Path) -> Result<ReceiptProof> {
    use base64::Engine as _;
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or(raw);
    ReceiptProof::decode(&bytes[..]).context("the file is not a ReceiptProof")
}

/// `fiscus verify-receipt`: Ok(true) when the receipt verifies.
pub(crate) fn run(cmd: VerifyReceiptCmd) -> Result<bool> {
    let proof = read_proof(&cmd.file)?;
    let certs = load_certs(&cmd.root, &cmd.certs_dir)?;
    match verify(&proof, &certs) {
        Ok(v) => {
            if cmd.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "valid": true, "tx_id": v.tx_id, "status": v.status,
                        "block_number": v.block_number, "block_hash": v.block_hash.to_hex(),
                        "attested_by": v.attested_by,
                    })
                );
            } else {
                println!(
                    "回执有效 / receipt verifies: tx {} ({}) in block {} ({}), attested by {} member(s): {}",
                    v.tx_id,
                    v.status,
                    v.block_number,
                    v.block_hash,
                    v.attested_by.len(),
                    v.attested_by.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(true)
        }
        Err(e) => {
            if cmd.json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "error": format!("{e:#}")})
                );
            } else {
                println!("回执无效 / receipt does NOT verify: {e:#}");
            }
            Ok(false)
        }
    }
}
