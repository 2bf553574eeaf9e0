//! Explicit bounds on decoded network input.

use crate::pb::types::Limits;

/// At most this many trace links a block carries (`Block.trace_links`) and a
/// span for blocks links to: OpenTelemetry's default span link limit.
pub const MAX_TRACE_LINKS: usize = 128;

/// Upper bounds applied before and while decoding wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest encoded `Envelope`, payload and signatures included.
    pub max_tx_bytes: usize,
    /// Most signatures one envelope may carry.
    pub max_signatures_per_tx: usize,
    /// Largest encoded `Block`.
    pub max_block_bytes: usize,
    /// Most transactions in one block.
    pub max_block_txs: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_tx_bytes: 64 * 1024,
            max_signatures_per_tx: 4,
            max_block_bytes: 16 * 1024 * 1024,
            max_block_txs: 4096,
        }
    }
}

impl From<&Limits> for DecodeLimits {
    /// Takes the consortium's on-chain limits; a zero field keeps the default.
    fn from(l: &Limits) -> Self {
        let d = Self::default();
        let pick = |v: u32, default: usize| if v == 0 { default } else { v as usize };
        Self {
            max_tx_bytes: pick(l.max_tx_bytes, d.max_tx_bytes),
            max_signatures_per_tx: pick(l.max_signatures_per_tx, d.max_signatures_per_tx),
            max_block_bytes: pick(l.max_block_bytes, d.max_block_bytes),
            max_block_txs: pick(l.max_block_txs, d.max_block_txs),
        }
    }
}

/// Decodes a protobuf message after checking its size against `limit`.
pub fn decode_bounded<M: prost::Message + Default>(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> crate::Result<M> {
    if bytes.len() > limit {
        return Err(crate::Error::TooLarge {
            what,
            len: bytes.len(),
            limit,
        });
    }
    M::decode(bytes).map_err(|source| crate::Error::Decode { what, source })
}
