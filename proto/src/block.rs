//! Blocks: building and signing them, and decoding network bytes into checked
//! blocks.

use crate::envelope::{CheckedTx, TxSignature};
use crate::hash::{Hash32, block_hash, envelope_commitment};
use crate::limits::{DecodeLimits, decode_bounded};
use crate::merkle;
use crate::pb::types::{Block, BlockHeader, Envelope, Signature};
use crate::sign::SigningKey;
use crate::{Error, Result};
use prost::Message;

/// A block whose structure has been checked: sizes, counts, hash lengths, the
/// tx count and `tx_root`. Signatures and the chain link need more context and
/// are checked by the ledger-store.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedBlock {
    pub hash: Hash32,
    pub number: u64,
    pub prev_hash: Hash32,
    pub tx_root: Hash32,
    pub timestamp_ms: i64,
    pub orderer_id: String,
    /// The exact header bytes the hash and the orderer signature cover.
    pub header_bytes: Vec<u8>,
    pub orderer_signature: TxSignature,
    pub txs: Vec<CheckedTx>,
}

impl CheckedBlock {
    /// Decodes and checks an encoded `Block`.
    pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Self> {
        let block: Block = decode_bounded("block", bytes, limits.max_block_bytes)?;
        Self::from_wire(block, limits)
    }

    /// Checks an already-decoded `Block`.
    pub fn from_wire(block: Block, limits: &DecodeLimits) -> Result<Self> {
        let header = BlockHeaderCheck::of(&block, limits)?;
        let leaves: Vec<Hash32> = block.txs.iter().map(envelope_commitment).collect();
        header.check_tx_root(&leaves)?;
        let txs = block
            .txs
            .into_iter()
            .map(|env| CheckedTx::from_wire(env, limits))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            hash: block_hash(&block.header),
            number: header.header.number,
            prev_hash: header.prev_hash,
            tx_root: header.tx_root,
            timestamp_ms: header.header.timestamp_ms,
            orderer_id: header.header.orderer_id,
            header_bytes: block.header,
            orderer_signature: header.orderer_signature,
            txs,
        })
    }
}

/// What can be checked of a block without decoding its transactions' payloads:
/// the block's size and tx count, its header, the orderer signature's shape,
/// and `tx_root` over the envelopes' commitments (payload hash and signatures,
/// [`envelope_commitment`]). A gateway
/// relays blocks after this check; the ledger decodes every payload.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedHeader {
    pub hash: Hash32,
    pub number: u64,
    pub prev_hash: Hash32,
    pub orderer_signature: TxSignature,
}

impl CheckedHeader {
    pub fn check(block: &Block, limits: &DecodeLimits) -> Result<Self> {
        let header = BlockHeaderCheck::of(block, limits)?;
        let leaves: Vec<Hash32> = block.txs.iter().map(envelope_commitment).collect();
        header.check_tx_root(&leaves)?;
        Ok(Self {
            hash: block_hash(&block.header),
            number: header.header.number,
            prev_hash: header.prev_hash,
            orderer_signature: header.orderer_signature,
        })
    }
}

/// The checks shared by [`CheckedBlock`] and [`CheckedHeader`].
struct BlockHeaderCheck {
    header: BlockHeader,
    prev_hash: Hash32,
    tx_root: Hash32,
    orderer_signature: TxSignature,
}

impl BlockHeaderCheck {
    fn of(block: &Block, limits: &DecodeLimits) -> Result<Self> {
        let size = block.encoded_len();
        if size > limits.max_block_bytes {
            return Err(Error::TooLarge {
                what: "block",
                len: size,
                limit: limits.max_block_bytes,
            });
        }
        if block.txs.len() > limits.max_block_txs {
            return Err(Error::TooMany {
                what: "block txs",
                count: block.txs.len(),
                limit: limits.max_block_txs,
            });
        }
        let header: BlockHeader = decode_bounded("block header", &block.header, 1024)?;
        let orderer_signature = block
            .orderer_signature
            .as_ref()
            .ok_or(Error::Missing("block.orderer_signature"))
            .and_then(TxSignature::try_from)?;
        if header.tx_count as usize != block.txs.len() {
            return Err(Error::Invalid(format!(
                "header says {} txs, block carries {}",
                header.tx_count,
                block.txs.len()
            )));
        }
        let tx_root = Hash32::from_slice("header.tx_root", &header.tx_root)?;
        let prev_hash = Hash32::from_slice("header.prev_hash", &header.prev_hash)?;
        Ok(Self {
            header,
            prev_hash,
            tx_root,
            orderer_signature,
        })
    }

    fn check_tx_root(&self, ids: &[Hash32]) -> Result<()> {
        if merkle::root(ids) != self.tx_root {
            return Err(Error::Invalid(
                "tx_root does not match the block's txs".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Everything needed to cut and sign a block.
#[derive(Debug)]
pub struct BlockDraft<'a> {
    pub number: u64,
    pub prev_hash: Hash32,
    pub timestamp_ms: i64,
    pub orderer_id: &'a str,
    pub txs: Vec<Envelope>,
}

impl BlockDraft<'_> {
    /// Computes `tx_root`, encodes the header once and signs those bytes.
    pub fn seal(self, orderer_key: &SigningKey, orderer_cert_id: Hash32) -> Block {
        let leaves: Vec<Hash32> = self.txs.iter().map(envelope_commitment).collect();
        let header = BlockHeader {
            number: self.number,
            prev_hash: self.prev_hash.to_vec(),
            tx_root: merkle::root(&leaves).to_vec(),
            timestamp_ms: self.timestamp_ms,
            orderer_id: self.orderer_id.to_owned(),
            tx_count: self.txs.len() as u32,
        }
        .encode_to_vec();
        let orderer_signature = Signature {
            cert_id: orderer_cert_id.to_vec(),
            signature: orderer_key.sign(&header).to_vec(),
            certificate: Vec::new(),
        };
        Block {
            header,
            orderer_signature: Some(orderer_signature),
            txs: self.txs,
            trace_links: Vec::new(),
        }
    }
}
