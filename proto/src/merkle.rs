//! RFC 6962 Merkle trees with inclusion proofs.
//!
//! Leaves are hashed as `SHA-256(0x00 ‖ data)` and inner nodes as
//! `SHA-256(0x01 ‖ left ‖ right)`. The different prefixes mean that an inner
//! node can never be presented as a leaf, or a leaf as a node (second-preimage
//! resistance). The tree shape is RFC 6962's: the left subtree holds the largest
//! power of two strictly below the leaf count.

use crate::hash::{Hash32, sha256};
use sha2::{Digest, Sha256};

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    Hash32(h.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// The root over leaf data, e.g. the tx ids of a block in order.
/// The empty tree's root is `SHA-256("")`, as in RFC 6962.
pub fn root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash32 {
    let hashes: Vec<Hash32> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    root_of_leaf_hashes(hashes)
}

/// The root over already-hashed leaves.
///
/// Pairs nodes level by level and carries an odd last node up unchanged, which
/// builds exactly RFC 6962's left-complete tree.
pub fn root_of_leaf_hashes(mut level: Vec<Hash32>) -> Hash32 {
    if level.is_empty() {
        return sha256(&[]);
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node_hash(l, r)),
                [odd] => next.push(*odd),
                _ => unreachable!("chunks(2) yields one or two items"),
            }
        }
        level = next;
    }
    level[0]
}

/// An inclusion proof for one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Sibling hashes from the leaf up to the root (RFC 6962 audit path).
    pub path: Vec<Hash32>,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("proof path has the wrong length for this leaf and tree size")]
    WrongPathLength,
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

/// Builds the inclusion proof of leaf `index` among leaf data `leaves`.
pub fn prove<T: AsRef<[u8]>>(leaves: &[T], index: usize) -> Option<InclusionProof> {
    let hashes: Vec<Hash32> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    prove_leaf_hashes(&hashes, index)
}

/// Builds the inclusion proof of leaf `index` among already-hashed leaves.
pub fn prove_leaf_hashes(hashes: &[Hash32], index: usize) -> Option<InclusionProof> {
    if index >= hashes.len() {
        return None;
    }
    let mut path = Vec::new();
    audit_path(hashes, index, &mut path);
    Some(InclusionProof {
        leaf_index: index as u64,
        tree_size: hashes.len() as u64,
        path,
    })
}

/// RFC 6962 §2.1.1 PATH(m, D[n]), written bottom-up into `out`.
fn audit_path(hashes: &[Hash32], m: usize, out: &mut Vec<Hash32>) {
    let n = hashes.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        audit_path(&hashes[..k], m, out);
        out.push(root_of_leaf_hashes(hashes[k..].to_vec()));
    } else {
        audit_path(&hashes[k..], m - k, out);
        out.push(root_of_leaf_hashes(hashes[..k].to_vec()));
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Checks that `leaf_data` sits at `proof.leaf_index` in the tree with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify(root: &Hash32, leaf_data: &[u8], proof: &InclusionProof) -> Result<(), ProofError> {
    verify_leaf_hash(root, &leaf_hash(leaf_data), proof)
}

/// Like [`verify`], for a leaf that is already hashed.
pub fn verify_leaf_hash(
    root: &Hash32,
    leaf: &Hash32,
    proof: &InclusionProof,
) -> Result<(), ProofError> {
    let (index, size) = (proof.leaf_index, proof.tree_size);
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in &proof.path {
        if snode == 0 {
            return Err(ProofError::WrongPathLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongPathLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6962's recursive definition, as a reference for the iterative root.
    fn reference_root(leaves: &[Vec<u8>]) -> Hash32 {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split_point(n);
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| sha256(&(i as u64).to_be_bytes()).to_vec())
            .collect()
    }

    #[test]
    fn a_single_leaf_root_is_its_prefixed_hash() {
        assert_eq!(root(&[b"tx"]), leaf_hash(b"tx"));
        assert_ne!(root(&[b"tx"]), sha256(b"tx"));
    }

    #[test]
    fn an_inner_node_cannot_pass_as_a_leaf() {
        let l = leaves(2);
        let r = root(&l);
        // An attacker presents the concatenated children as one "leaf" of a one-leaf tree.
        let forged_leaf = [leaf_hash(&l[0]).0, leaf_hash(&l[1]).0].concat();
        let proof = InclusionProof {
            leaf_index: 0,
            tree_size: 1,
            path: vec![],
        };
        assert_eq!(
            verify(&r, &forged_leaf, &proof),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn a_proof_with_an_extra_step_is_rejected() {
        let l = leaves(4);
        let r = root(&l);
        let mut proof = prove(&l, 1).unwrap();
        proof.path.push(Hash32::ZERO);
        assert_eq!(verify(&r, &l[1], &proof), Err(ProofError::WrongPathLength));
    }

    #[test]
    fn an_index_past_the_tree_is_rejected() {
        let l = leaves(3);
        let proof = InclusionProof {
            leaf_index: 3,
            tree_size: 3,
            path: vec![],
        };
        assert!(matches!(
            verify(&root(&l), &l[0], &proof),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(prove(&l, 3).is_none());
    }

    proptest! {
        #[test]
        fn iterative_root_equals_the_rfc_6962_definition(n in 0usize..300) {
            let l = leaves(n);
            prop_assert_eq!(root(&l), reference_root(&l));
        }

        #[test]
        fn every_leaf_proves_and_no_other_leaf_does(n in 1usize..130, pick in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let r = root(&l);
            let i = pick.index(n);
            let proof = prove(&l, i).unwrap();
            prop_assert_eq!(verify(&r, &l[i], &proof), Ok(()));
            // The same proof must not vouch for a different leaf or index.
            prop_assert!(verify(&r, b"not a leaf", &proof).is_err());
            if n > 1 {
                let other = (i + 1) % n;
                let moved = InclusionProof { leaf_index: other as u64, ..proof.clone() };
                prop_assert!(verify(&r, &l[i], &moved).is_err());
            }
        }

        #[test]
        fn a_flipped_path_bit_breaks_the_proof(n in 2usize..100, pick in any::<prop::sample::Index>(), bit in 0usize..256) {
            let l = leaves(n);
            let r = root(&l);
            let i = pick.index(n);
            let mut proof = prove(&l, i).unwrap();
            let step = bit % proof.path.len();
            proof.path[step].0[(bit / 8) % 32] ^= 1 << (bit % 8);
            prop_assert_eq!(verify(&r, &l[i], &proof), Err(ProofError::RootMismatch));
        }
    }
}
