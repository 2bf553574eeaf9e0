//! Offline receipt verification: a `ReceiptProof` checked against the
//! consortium root, with no network.

use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_common::certs::Certs;
use fiscus_common::tls::PeerIdentity;
use fiscus_proto::hash::{Hash32, block_hash};
use fiscus_proto::merkle::{self, InclusionProof};
use fiscus_proto::pb::types::{Attestation, BlockHeader, ConsortiumConfig, Receipt, ReceiptProof};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct VerifyReceiptCmd {
    /// The receipt proof: protobuf `fiscus.types.v1.ReceiptProof`, raw or base64
    /// (the `receipt_proof` field of `GET /v1/transactions/{id}?proof=final`).
    #[arg(long)]
    file: PathBuf,
    /// The consortium root certificate (PEM).
    #[arg(long)]
    root: PathBuf,
    /// A directory of certificates (PEM); only member node certificates issued by
    /// the root are accepted as attestation signers.
    #[arg(long)]
    certs_dir: PathBuf,
    /// The consortium config (protobuf `fiscus.types.v1.ConsortiumConfig`, raw or
    /// base64) in force at the receipt's height, or a later one if no member
    /// joined since: who the members are and which certificates are revoked.
    /// Without it the receipt can be valid but is never reported final.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Exit 1 unless the receipt is final (a majority of members agree).
    #[arg(long)]
    require_final: bool,
    #[arg(long)]
    json: bool,
}

/// At most this many attestations are read from one proof.
pub(crate) const MAX_ATTESTATIONS: usize = 1024;

/// What a verified receipt proves.
#[derive(Debug)]
pub(crate) struct Verified {
    pub tx_id: String,
    pub tx_index: u32,
    pub status: String,
    pub reason: String,
    pub block_number: u64,
    pub block_hash: Hash32,
    /// Members whose valid attestations agree with each other and cover the receipt.
    pub attested_by: BTreeSet<String>,
    /// Members at the block's height (empty without a config).
    pub members: BTreeSet<String>,
    /// The agreeing members needed: a strict majority of `members`.
    pub majority: usize,
    /// A majority of the consortium's members agree on this block.
    pub is_final: bool,
    /// Why the receipt is not final, when it is not.
    pub not_final_because: Option<String>,
    /// Signed, well-formed attestations that were not counted, and why.
    pub not_counted: Vec<(String, String)>,
}

/// (block hash, state hash, receipts root) of an attestation.
type Triple = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Node certificates that chain to the root, by certificate id, and the
/// root, for a node certificate an attestation carries (a member that joined
/// after the certificates directory was copied).
#[derive(Debug, Default)]
pub(crate) struct Signers {
    pub nodes: BTreeMap<Hash32, PeerIdentity>,
    pub roots: fiscus_common::certs::Roots,
}

impl Signers {
    /// The node identity behind `cert`: on file, or carried by the signature
    /// (its SHA-256 must be `cert`, a root must have signed it: the rule
    /// every member applies, `Roots::identity`).
    fn node(&self, cert: &Hash32, carried: &[u8]) -> Option<PeerIdentity> {
        if let Some(id) = self.nodes.get(cert) {
            return Some(id.clone());
        }
        self.roots
            .carried(cert, carried)
            .filter(|id| id.role == fiscus_proto::pb::types::Role::Node)
    }
}

fn bind_proof(proof: &ReceiptProof) -> Result<(Receipt, BlockHeader, InclusionProof)> {
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
    let p = proof
        .proof
        .as_ref()
        .context("the Merkle proof is missing")?;
    // The proof must be for this receipt's place in this block, not any place.
    if p.tree_size != u64::from(header.tx_count) {
        bail!(
            "the Merkle proof is over {} receipts but block {} has {} transactions",
            p.tree_size,
            header.number,
            header.tx_count
        );
    }
    if p.leaf_index != u64::from(receipt.tx_index) {
        bail!(
            "the Merkle proof is for position {} but the receipt says tx_index {}",
            p.leaf_index,
            receipt.tx_index
        );
    }
    if p.path.len() > 64 {
        bail!("the Merkle path has {} hashes (at most 64)", p.path.len());
    }
    let inclusion = InclusionProof {
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        path: p
            .path
            .iter()
            .map(|h| Hash32::from_slice("proof hash", h))
            .collect::<std::result::Result<_, _>>()?,
    };
    Ok((receipt, header, inclusion))
}

/// The members at `height` by `config`: its members, plus those that left
/// after `height` (they were members then).
fn members_at(config: &ConsortiumConfig, height: u64) -> BTreeSet<String> {
    config
        .members
        .iter()
        .map(|m| m.org_code.clone())
        .chain(
            config
                .revoked_orgs
                .iter()
                .filter(|r| r.effective_height > height)
                .map(|r| r.org_code.clone()),
        )
        .collect()
}

/// Why a signer certificate does not count at `height` (block time
/// `time_s`), or `None` if it does.
fn signer_problem(
    id: &PeerIdentity,
    config: Option<&ConsortiumConfig>,
    height: u64,
    time_s: i64,
) -> Option<String> {
    if time_s < id.not_before || time_s > id.not_after {
        return Some(format!(
            "its certificate {} is not valid at the block's time ({time_s}; valid {} to {})",
            id.cert_id, id.not_before, id.not_after
        ));
    }
    let config = config?;
    let revoked = config.crl.as_ref().and_then(|c| {
        c.revoked
            .iter()
            .find(|r| r.cert_id == id.cert_id.to_vec() && r.effective_height <= height)
    });
    if let Some(r) = revoked {
        return Some(format!(
            "its certificate {} is revoked from height {} ({})",
            id.cert_id, r.effective_height, r.reason
        ));
    }
    if let Some(r) = config
        .revoked_orgs
        .iter()
        .find(|r| r.org_code == id.member && r.effective_height <= height)
    {
        return Some(format!(
            "member {} left the consortium at height {}",
            r.org_code, r.effective_height
        ));
    }
    None
}

/// Checks a receipt proof (the rules are in docs/receipts.md):
///
/// 1. the receipt and header decode, name the same block, and the Merkle
///    proof is for the receipt's own position (`leaf_index` = `tx_index`,
///    `tree_size` = the header's `tx_count`);
/// 2. every attestation decodes, names this block and its hash, and is signed
///    (Ed25519, the project's acceptance rule) by a node certificate of the
///    attesting member that chains to the root; any failure here makes the
///    whole proof invalid;
/// 3. an attestation counts only if its certificate is valid at the block's
///    time and, with a config, its member was a member at that height and
///    neither the certificate nor the member was revoked by then;
/// 4. counted attestations are grouped by (block hash, state hash, receipts
///    root); the receipt must be under the receipts root of the largest
///    group that contains it, and only that group's members agree;
/// 5. final: a config was given and the agreeing members are a strict
///    majority of the members at that height.
pub(crate) fn verify(
    proof: &ReceiptProof,
    signers: &Signers,
    config: Option<&ConsortiumConfig>,
) -> Result<Verified> {
    let (receipt, header, inclusion) = bind_proof(proof)?;
    let hash = block_hash(&proof.block_header);
    if proof.attestations.is_empty() {
        bail!("the proof carries no attestation");
    }
    if proof.attestations.len() > MAX_ATTESTATIONS {
        bail!(
            "the proof carries {} attestations (at most {MAX_ATTESTATIONS})",
            proof.attestations.len()
        );
    }
    let members = config
        .map(|c| members_at(c, header.number))
        .unwrap_or_default();
    let time_s = header.timestamp_ms.div_euclid(1000);
    let mut not_counted = Vec::new();
    // (block hash, state hash, receipts root) → members that attested it.
    let mut groups: BTreeMap<Triple, BTreeSet<String>> = BTreeMap::new();
    for signed in &proof.attestations {
        let att = Attestation::decode(&signed.attestation[..])
            .context("an attestation does not decode")?;
        let sig = signed
            .signature
            .as_ref()
            .context("an attestation is unsigned")?;
        let cert = Hash32::from_slice("cert id", &sig.cert_id)?;
        let id = signers.node(&cert, &sig.certificate).with_context(|| {
            format!(
                "member {}'s attestation is signed by certificate {cert}, which is not a node certificate issued by the root",
                att.member
            )
        })?;
        if id.member != att.member {
            bail!(
                "an attestation for member {} is signed by a certificate of {}",
                att.member,
                id.member
            );
        }
        let key = id.public_key.ed25519().with_context(|| {
            format!(
                "member {}'s attestation names certificate {cert}, an ECDSA TLS certificate, which cannot sign",
                att.member
            )
        })?;
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
        if let Some(why) = signer_problem(&id, config, header.number, time_s) {
            not_counted.push((att.member, why));
            continue;
        }
        if config.is_some() && !members.contains(&att.member) {
            not_counted.push((
                att.member.clone(),
                format!("{} is not a member at height {}", att.member, header.number),
            ));
            continue;
        }
        groups
            .entry((att.block_hash, att.state_hash, att.receipts_root))
            .or_default()
            .insert(att.member);
    }
    // The largest group whose receipts root holds the receipt.
    let mut agreeing: Option<(&Triple, &BTreeSet<String>)> = None;
    for (triple, group) in &groups {
        let root = Hash32::from_slice("receipts root", &triple.2)?;
        if merkle::verify(&root, &proof.receipt, &inclusion).is_err() {
            for m in group {
                not_counted.push((
                    m.clone(),
                    "the receipt is not under its receipts root".to_owned(),
                ));
            }
            continue;
        }
        if agreeing.is_none_or(|(_, g)| group.len() > g.len()) {
            agreeing = Some((triple, group));
        }
    }
    let Some((agreed, attested_by)) = agreeing else {
        let why: Vec<String> = not_counted
            .iter()
            .map(|(m, why)| format!("{m}: {why}"))
            .collect();
        bail!(
            "no counted attestation has the receipt under its receipts root ({})",
            why.join("; ")
        );
    };
    for (triple, group) in &groups {
        if triple != agreed {
            for m in group {
                if !not_counted.iter().any(|(n, _)| n == m) {
                    not_counted.push((
                        m.clone(),
                        "it attests a different state hash or receipts root than the agreeing members"
                            .to_owned(),
                    ));
                }
            }
        }
    }
    let attested_by = attested_by.clone();
    let majority = members.len() / 2 + 1;
    let not_final_because = if config.is_none() {
        Some("no consortium config was given (--config), so membership and revocation were not checked".to_owned())
    } else if attested_by.len() < majority {
        Some(format!(
            "{} of {} members agree; a majority is {majority}",
            attested_by.len(),
            members.len()
        ))
    } else {
        None
    };
    Ok(Verified {
        tx_id: hex::encode(&receipt.tx_id),
        tx_index: receipt.tx_index,
        status: fiscus_proto::tx_status_name(receipt.status),
        reason: receipt.reason,
        block_number: header.number,
        block_hash: hash,
        attested_by,
        is_final: not_final_because.is_none(),
        not_final_because,
        members,
        majority,
        not_counted,
    })
}

/// Loads the **node** certificates in `dir` that chain to the root in
/// `root_pem`. Client, admin and orderer certificates in the same directory
/// are left out: only a member's node signs attestations.
pub(crate) fn load_certs(root_pem: &Path, dir: &Path) -> Result<Signers> {
    let pem = std::fs::read(root_pem).with_context(|| format!("reading {}", root_pem.display()))?;
    let roots: Vec<Vec<u8>> = fiscus_common::tls::parse_certs(root_pem, &pem)?
        .into_iter()
        .map(|c| c.to_vec())
        .collect();
    let signed_by_root = Certs::load_dir(dir, &roots)?;
    let mut nodes = BTreeMap::new();
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
        let Ok(id) = PeerIdentity::from_der(leaf) else {
            continue;
        };
        if id.role != fiscus_proto::pb::types::Role::Node {
            continue;
        }
        if signed_by_root.public_key(&id.cert_id).is_some() {
            nodes.insert(id.cert_id, id);
        }
    }
    Ok(Signers {
        nodes,
        roots: fiscus_common::certs::Roots::from_ders(&roots),
    })
}

/// Reads a file holding protobuf bytes, raw or standard base64.
fn read_raw_or_base64(path: &Path) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    Ok(base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or(raw))
}

pub(crate) fn read_config(path: &Path) -> Result<ConsortiumConfig> {
    ConsortiumConfig::decode(&read_raw_or_base64(path)?[..])
        .with_context(|| format!("{} is not a ConsortiumConfig", path.display()))
}

pub(crate) fn read_proof(path: &Path) -> Result<ReceiptProof> {
    ReceiptProof::decode(&read_raw_or_base64(path)?[..]).context("the file is not a ReceiptProof")
}

/// `fiscus verify-receipt`: Ok(true) when the receipt verifies (and, with
/// `--require-final`, is final).
pub(crate) fn run(cmd: VerifyReceiptCmd) -> Result<bool> {
    let proof = read_proof(&cmd.file)?;
    let signers = load_certs(&cmd.root, &cmd.certs_dir)?;
    let config = cmd.config.as_deref().map(read_config).transpose()?;
    match verify(&proof, &signers, config.as_ref()) {
        Ok(v) => {
            if cmd.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "valid": true, "final": v.is_final,
                        "not_final_because": v.not_final_because,
                        "tx_id": v.tx_id, "tx_index": v.tx_index,
                        "status": v.status, "reason": v.reason,
                        "block_number": v.block_number, "block_hash": v.block_hash.to_hex(),
                        "attested_by": v.attested_by,
                        "members": v.members, "majority": v.majority,
                        "not_counted": v.not_counted.iter()
                            .map(|(m, why)| serde_json::json!({"member": m, "why": why}))
                            .collect::<Vec<_>>(),
                    })
                );
            } else {
                println!(
                    "回执有效 / receipt verifies: tx {} (index {} in block {} {}), status {}{}",
                    v.tx_id,
                    v.tx_index,
                    v.block_number,
                    v.block_hash,
                    v.status,
                    if v.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", v.reason)
                    }
                );
                println!(
                    "  agreeing members / 一致的成员: {} ({})",
                    v.attested_by.len(),
                    v.attested_by.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                for (m, why) in &v.not_counted {
                    println!("  not counted / 未计入: {m}: {why}");
                }
                match &v.not_final_because {
                    None => println!(
                        "已最终确认 / FINAL: {} of {} members agree (majority {})",
                        v.attested_by.len(),
                        v.members.len(),
                        v.majority
                    ),
                    Some(why) => println!("未证明最终性 / NOT proven final: {why}"),
                }
            }
            Ok(v.is_final || !cmd.require_final)
        }
        Err(e) => {
            if cmd.json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "final": false, "error": format!("{e:#}")})
                );
            } else {
                println!("回执无效 / receipt does NOT verify: {e:#}");
            }
            Ok(false)
        }
    }
}
