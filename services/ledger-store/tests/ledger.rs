//! The ledger on the embedded store (fjall, the ledger default): commit, refusals, proofs, traces,
//! determinism across members, offline replay and tamper detection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::store::{StateStore, StoreLimits, WriteBatch, fjall::FjallStore};
use fiscus_common::testkit::fixtures::{self, Signer};
use fiscus_ledger_store::verify::verify_chain;
use fiscus_ledger_store::{Certs, Ledger, LedgerConfig, LedgerError, keys};
use fiscus_proto::block::BlockDraft;
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::{Hash32, TxId, sha256, tx_id};
use fiscus_proto::merkle;
use fiscus_proto::pb::transfer::{
    AccountRef, AllocateArgs, AppropriateArgs, DisburseArgs, Program, Recipient, recipient,
    transfer_call::Method,
};
use fiscus_proto::pb::types::{
    Attestation, ConsortiumConfig, Envelope, Receipt, TxPayload, TxStatus, tx_payload::Call,
};
use fiscus_proto::sign::SigningKey;
use prost::Message;

const T0: i64 = 1_790_000_000_000;

struct World {
    orderer: Signer,
    mof: Signer,
    hebei: Signer,
    county: Signer,
    rogue: Signer,
    nonce: u64,
}

fn signer(seed: u8) -> Signer {
    Signer::from_seed([seed; 32])
}

impl World {
    fn new() -> Self {
        Self {
            orderer: signer(1),
            mof: signer(2),
            hebei: signer(3),
            county: signer(4),
            rogue: signer(5),
            nonce: 0,
        }
    }

    fn config(&self, member: &str) -> LedgerConfig {
        let mut certs = Certs::default();
        certs.insert_key(self.orderer.cert, "000000", self.orderer.key.public_key());
        certs.insert_key(self.mof.cert, "000000", self.mof.key.public_key());
        certs.insert_key(self.hebei.cert, "130000", self.hebei.key.public_key());
        certs.insert_key(self.county.cert, "130102", self.county.key.public_key());
        LedgerConfig {
            member: member.into(),
            consortium_id: "fiscus-test".into(),
            limits: Default::default(),
            certs,
            key: SigningKey::from_seed(&[9; 32]),
            cert_id: sha256(b"member node cert"),
            certificate: Vec::new(),
            threads: 2,
        }
    }

    fn tx(&mut self, who: &Signer, call: Method) -> Envelope {
        self.nonce += 1;
        self.tx_with_nonce(who, self.nonce, call)
    }

    fn tx_with_nonce(&self, who: &Signer, nonce: u64, call: Method) -> Envelope {
        fixtures::transfer_tx("fiscus-test", &who.key, who.cert, nonce, call)
    }

    fn block(&self, number: u64, prev: Hash32, ts: i64, txs: Vec<Envelope>) -> Vec<u8> {
        fixtures::block(&self.orderer, number, prev, ts, txs).encode_to_vec()
    }

    /// Blocks 1, 2, … holding `txs`, each linked to the one before, block n
    /// at `T0 + (n - 1) * step_ms`; and the last block's hash.
    fn chain(&self, txs: Vec<Vec<Envelope>>, step_ms: i64) -> (Vec<Vec<u8>>, Hash32) {
        let mut blocks = Vec::new();
        let mut prev = Hash32::ZERO;
        for (n, txs) in txs.into_iter().enumerate() {
            let b = self.block(n as u64 + 1, prev, T0 + n as i64 * step_ms, txs);
            prev = fiscus_proto::pb::types::Block::decode(&b[..])
                .map(|b| fiscus_proto::hash::block_hash(&b.header))
                .unwrap();
            blocks.push(b);
        }
        (blocks, prev)
    }
}

/// The genesis every test ledger starts from.
fn genesis() -> ConsortiumConfig {
    fixtures::genesis(
        "fiscus-test",
        &["000000", "130000", "130100", "130102"],
        &["000000", "130000", "130102"],
    )
}

/// A ledger on `store`, initialised with [`genesis`].
async fn ledger(store: FjallStore, cfg: LedgerConfig) -> Ledger<FjallStore> {
    let l = Ledger::new(store, cfg);
    l.init(&genesis()).await.unwrap();
    l
}

fn acct(org: &str) -> Option<AccountRef> {
    fixtures::account(org, "edu")
}

fn appropriate(amount: i64) -> Method {
    Method::Appropriate(AppropriateArgs {
        account: acct("000000"),
        program: Some(Program {
            name: "义务教育".into(),
            direct: true,
            ..fixtures::program("edu")
        }),
        amount_fen: amount,
        document: "财预〔2026〕12号".into(),
    })
}

fn allocate(from: &str, to: &str, amount: i64) -> Method {
    Method::Allocate(AllocateArgs {
        from: acct(from),
        to_org_code: to.into(),
        amount_fen: amount,
        document: "doc".into(),
        external_id: String::new(),
    })
}

fn disburse(amount: i64) -> Method {
    Method::Disburse(DisburseArgs {
        from: acct("130102"),
        recipient: Some(Recipient {
            id: Some(recipient::Id::UnifiedSocialCreditCode(
                "12130102MB1234562B".into(),
            )),
            name: "school".into(),
        }),
        amount_fen: amount,
        purpose: "公用经费".into(),
        economic_code: "50502".into(),
        external_id: String::new(),
    })
}

async fn open(dir: &std::path::Path, name: &str) -> FjallStore {
    FjallStore::open(&dir.join(name), StoreLimits::default()).unwrap()
}

/// Three blocks: appropriate; allocate MOF → Hebei and direct to the county; disburse.
async fn seed_chain(w: &mut World, l: &Ledger<FjallStore>) -> (TxId, TxId) {
    let appr = w.tx(&w.mof.clone_ref(), appropriate(1_000_000));
    let appr_id = tx_id(&appr.payload);
    let h = l
        .commit_block(&w.block(1, Hash32::ZERO, T0, vec![appr]))
        .await
        .unwrap()
        .head;
    let a1 = w.tx(&w.mof.clone_ref(), allocate("000000", "130000", 300_000));
    let a2 = w.tx(&w.mof.clone_ref(), allocate("000000", "130102", 200_000));
    let h = l
        .commit_block(&w.block(2, h.hash, T0 + 1000, vec![a1, a2]))
        .await
        .unwrap()
        .head;
    let d = w.tx(&w.county.clone_ref(), disburse(50_000));
    let d_id = tx_id(&d.payload);
    let s = l
        .commit_block(&w.block(3, h.hash, T0 + 2000, vec![d]))
        .await
        .unwrap();
    assert_eq!((s.valid, s.invalid), (1, 0));
    (appr_id, d_id)
}

trait CloneRef {
    fn clone_ref(&self) -> Signer;
}

impl CloneRef for Signer {
    fn clone_ref(&self) -> Signer {
        Signer {
            key: SigningKey::from_seed(&self.key.seed()),
            cert: self.cert,
        }
    }
}

#[tokio::test]
async fn blocks_commit_and_a_disbursement_traces_to_its_appropriation_with_an_offline_proof() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let l = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    let (appr, disb) = seed_chain(&mut w, &l).await;
    let head = l.head().await.unwrap();
    assert_eq!(head.height, 3);

    let trace = l.trace(&disb).await.unwrap();
    assert_eq!(trace.first().unwrap().1.kind, "disburse");
    assert_eq!(
        trace.last().unwrap().0,
        appr,
        "the trace ends at the appropriation"
    );

    // The receipt proof checks offline against the attested receipts root.
    let p = l.receipt_proof(&disb, false).await.unwrap();
    let receipt = Receipt::decode(&p.receipt[..]).unwrap();
    assert_eq!(receipt.status, TxStatus::Valid as i32);
    let att = Attestation::decode(&p.attestations[0].attestation[..]).unwrap();
    assert_eq!(att.height, 3);
    let proof = p.proof.unwrap();
    let proof = merkle::InclusionProof {
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        path: proof
            .path
            .iter()
            .map(|h| Hash32::from_slice("p", h).unwrap())
            .collect(),
    };
    merkle::verify(
        &Hash32::from_slice("root", &att.receipts_root).unwrap(),
        &p.receipt,
        &proof,
    )
    .unwrap();
    let node_key = SigningKey::from_seed(&[9; 32]).public_key();
    fiscus_proto::sign::verify(
        &node_key,
        &p.attestations[0].attestation,
        &p.attestations[0].signature.as_ref().unwrap().signature,
    )
    .unwrap();

    let history = l
        .history(
            &fiscus_contract_executor::keys::account("130102", "edu"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        vec![3, 2],
        "newest first"
    );
}

#[tokio::test]
async fn bad_blocks_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let l = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    seed_chain(&mut w, &l).await;
    let head = l.head().await.unwrap();
    let commits = l.store().last_commit().await.unwrap();
    let tx = w.tx(&w.mof.clone_ref(), appropriate(1));

    let wrong_number = w.block(5, head.hash, T0 + 3000, vec![tx.clone()]);
    assert!(matches!(
        l.commit_block(&wrong_number).await,
        Err(LedgerError::NotNext { .. })
    ));
    let wrong_link = w.block(4, Hash32::ZERO, T0 + 3000, vec![tx.clone()]);
    assert!(matches!(
        l.commit_block(&wrong_link).await,
        Err(LedgerError::BadLink(4))
    ));
    let backwards = w.block(4, head.hash, T0 - 1, vec![tx.clone()]);
    assert!(matches!(
        l.commit_block(&backwards).await,
        Err(LedgerError::BadTimestamp(4))
    ));
    let mut forged = fiscus_proto::pb::types::Block::decode(
        &w.block(4, head.hash, T0 + 3000, vec![tx.clone()])[..],
    )
    .unwrap();
    forged.orderer_signature.as_mut().unwrap().signature[0] ^= 1;
    assert!(matches!(
        l.commit_block(&forged.encode_to_vec()).await,
        Err(LedgerError::BadOrdererSignature(4))
    ));
    let by_rogue = BlockDraft {
        number: 4,
        prev_hash: head.hash,
        timestamp_ms: T0 + 3000,
        orderer_id: "rogue",
        txs: vec![tx],
    }
    .seal(&w.rogue.key, w.rogue.cert)
    .encode_to_vec();
    assert!(matches!(
        l.commit_block(&by_rogue).await,
        Err(LedgerError::BadOrdererSignature(4))
    ));
    assert!(matches!(
        l.commit_block(b"garbage").await,
        Err(LedgerError::Malformed(_))
    ));

    assert_eq!(l.head().await.unwrap(), head);
    assert_eq!(
        l.store().last_commit().await.unwrap(),
        commits,
        "nothing was written"
    );
}

#[tokio::test]
async fn bad_transactions_get_typed_receipts_and_change_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let mut cfg = w.config("130000");
    // Hebei's certificate is revoked from block 2 on.
    cfg.certs.revoke_from(&w.hebei.cert, 2);
    let l = ledger(open(dir.path(), "a.fjall").await, cfg).await;
    let appr = w.tx(&w.mof.clone_ref(), appropriate(1000));
    let h = l
        .commit_block(&w.block(1, Hash32::ZERO, T0, vec![appr.clone()]))
        .await
        .unwrap()
        .head;

    let mut forged = w.tx(&w.mof.clone_ref(), allocate("000000", "130000", 10));
    forged.signatures[0].signature[3] ^= 1;
    let unknown = w.tx(&w.rogue.clone_ref(), allocate("000000", "130000", 10));
    let revoked = w.tx(&w.hebei.clone_ref(), allocate("130000", "130100", 10));
    let good = w.tx(&w.mof.clone_ref(), allocate("000000", "130000", 10));
    let overdraw = w.tx(&w.mof.clone_ref(), allocate("000000", "130000", 5000));
    let txs = vec![
        appr.clone(),
        forged,
        unknown,
        revoked,
        good.clone(),
        good,
        overdraw,
    ];
    let before = l
        .state(&fiscus_contract_executor::keys::account("000000", "edu"))
        .await
        .unwrap();
    l.commit_block(&w.block(2, h.hash, T0 + 1, txs.clone()))
        .await
        .unwrap();
    let statuses: Vec<i32> = futures_receipts(&l, 2, txs.len())
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        vec![
            TxStatus::Duplicate as i32, // replay of block 1's tx
            TxStatus::BadSignature as i32,
            TxStatus::UnknownCertificate as i32,
            TxStatus::RevokedCertificate as i32,
            TxStatus::Valid as i32,
            TxStatus::Duplicate as i32, // the same tx twice in one block
            TxStatus::InsufficientFunds as i32,
        ]
    );
    let after = l
        .state(&fiscus_contract_executor::keys::account("000000", "edu"))
        .await
        .unwrap();
    assert_ne!(before, after, "only the good allocation moved funds");
    let acct = fiscus_proto::pb::state::Account::decode(&after.unwrap()[..]).unwrap();
    assert_eq!(acct.balance_fen, 990);
}

#[tokio::test]
async fn a_creators_nonce_is_used_once_so_a_second_body_with_it_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let l = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    let appr = w.tx(&w.mof.clone_ref(), appropriate(1000)); // nonce 1
    let h = l
        .commit_block(&w.block(1, Hash32::ZERO, T0, vec![appr]))
        .await
        .unwrap()
        .head;
    let mof = w.mof.clone_ref();
    let first = w.tx_with_nonce(&mof, 7, allocate("000000", "130000", 10));
    let same_block = w.tx_with_nonce(&mof, 7, allocate("000000", "130000", 20));
    let earlier_block = w.tx_with_nonce(&mof, 1, allocate("000000", "130000", 30));
    // Nonces are per creator: Hebei may use 7 too.
    let hebei = w.tx_with_nonce(&w.hebei.clone_ref(), 7, allocate("130000", "130100", 5));
    let txs = vec![first.clone(), same_block.clone(), earlier_block, hebei];
    let h = l
        .commit_block(&w.block(2, h.hash, T0 + 1, txs.clone()))
        .await
        .unwrap()
        .head;
    let receipts = futures_receipts(&l, 2, txs.len()).await;
    let got: Vec<(i32, &str)> = receipts
        .iter()
        .map(|r| (r.status, r.reason.split(':').next().unwrap_or("")))
        .collect();
    assert_eq!(
        got,
        vec![
            (TxStatus::Valid as i32, ""),
            (TxStatus::Duplicate as i32, "tx.nonce_reused"),
            (TxStatus::Duplicate as i32, "tx.nonce_reused"),
            (TxStatus::Valid as i32, ""),
        ]
    );
    let acct = |raw: Option<Vec<u8>>| {
        fiscus_proto::pb::state::Account::decode(&raw.unwrap()[..])
            .unwrap()
            .balance_fen
    };
    let mof_acct = fiscus_contract_executor::keys::account("000000", "edu");
    assert_eq!(
        acct(l.state(&mof_acct).await.unwrap()),
        990,
        "only the first body moved funds"
    );
    let first_id = tx_id(&first.payload);
    assert_eq!(l.nonce_use(&w.mof.cert, 7).await.unwrap(), Some(first_id));
    assert_eq!(l.nonce_use(&w.mof.cert, 8).await.unwrap(), None);
    // The refused body's receipt can be read, and sending it again is a replay.
    assert!(
        l.receipt_proof(&tx_id(&same_block.payload), false)
            .await
            .is_ok()
    );
    l.commit_block(&w.block(3, h.hash, T0 + 2, vec![same_block]))
        .await
        .unwrap();
    let r = futures_receipts(&l, 3, 1).await;
    assert!(r[0].reason.starts_with("tx.duplicate"), "{:?}", r[0].reason);
    assert_eq!(verify_chain(l.store(), l.config()).await, Ok(3));

    // A chain begun before nonces were indexed (no marker, no nonce entry):
    // a replay is still found through the tx index.
    l.store()
        .commit(
            WriteBatch::new()
                .delete(keys::NONCES_SINCE_GENESIS.to_vec())
                .delete(keys::nonce_index(&w.mof.cert, 7)),
        )
        .await
        .unwrap();
    let h3 = l.head().await.unwrap();
    l.commit_block(&w.block(4, h3.hash, T0 + 3, vec![first]))
        .await
        .unwrap();
    let r = futures_receipts(&l, 4, 1).await;
    assert!(r[0].reason.starts_with("tx.duplicate"), "{:?}", r[0].reason);
    assert_eq!(acct(l.state(&mof_acct).await.unwrap()), 990);
}

async fn futures_receipts(l: &Ledger<FjallStore>, n: u64, count: usize) -> Vec<Receipt> {
    let r = l.receipts(n).await.unwrap();
    assert_eq!(r.len(), count);
    r
}

#[tokio::test]
async fn two_members_fed_the_same_blocks_reach_the_same_state_hash_and_replay_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let a = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    seed_chain(&mut w, &a).await;
    let b = ledger(open(dir.path(), "b.fjall").await, w.config("000000")).await;
    for n in 1..=3 {
        b.commit_block(&a.block(n).await.unwrap()).await.unwrap();
    }
    assert_eq!(
        a.head().await.unwrap(),
        b.head().await.unwrap(),
        "same blocks, same state hash and receipts root"
    );
    assert_eq!(verify_chain(a.store(), a.config()).await, Ok(3));
}

#[tokio::test]
async fn flipping_one_byte_of_a_stored_block_or_state_value_is_found_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let l = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    seed_chain(&mut w, &l).await;
    assert_eq!(verify_chain(l.store(), l.config()).await, Ok(3));

    // A state value.
    let key = keys::state(&fiscus_contract_executor::keys::account("130000", "edu"));
    let original = l.store().get(&key).await.unwrap().unwrap().value;
    let mut bad = original.clone();
    bad[2] ^= 1;
    l.store()
        .commit(WriteBatch::new().put(key.clone(), bad))
        .await
        .unwrap();
    let f = verify_chain(l.store(), l.config()).await.unwrap_err();
    assert_eq!(f.height, 2, "{f:?}");
    l.store()
        .commit(WriteBatch::new().put(key, original))
        .await
        .unwrap();
    assert_eq!(verify_chain(l.store(), l.config()).await, Ok(3));

    // A block.
    let mut block = l.block(2).await.unwrap();
    let at = block.len() - 10;
    block[at] ^= 1;
    l.store()
        .commit(WriteBatch::new().put(keys::block(2), block))
        .await
        .unwrap();
    let f = verify_chain(l.store(), l.config()).await.unwrap_err();
    assert_eq!(f.height, 2, "{f:?}");
}

#[derive(Debug, Clone)]
enum Op {
    Appropriate(i64),
    ToProvince(i64),
    ToCounty(i64),
    Disburse(i64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let amount = prop_oneof![1i64..5000, Just(0i64), 5000i64..100_000];
    prop_oneof![
        amount.clone().prop_map(Op::Appropriate),
        amount.clone().prop_map(Op::ToProvince),
        amount.clone().prop_map(Op::ToCounty),
        amount.prop_map(Op::Disburse),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    #[test]
    fn replaying_random_blocks_from_genesis_reproduces_every_state_hash(
        blocks in proptest::collection::vec(proptest::collection::vec(op(), 1..12), 1..5)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut w = World::new();
            let a = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
            let b = ledger(open(dir.path(), "b.fjall").await, w.config("000000")).await;
            let mut prev = Hash32::ZERO;
            for (i, ops) in blocks.iter().enumerate() {
                let txs: Vec<Envelope> = ops
                    .iter()
                    .map(|o| match *o {
                        Op::Appropriate(x) => w.tx(&w.mof.clone_ref(), appropriate(x)),
                        Op::ToProvince(x) => w.tx(&w.mof.clone_ref(), allocate("000000", "130000", x)),
                        Op::ToCounty(x) => w.tx(&w.mof.clone_ref(), allocate("000000", "130102", x)),
                        Op::Disburse(x) => w.tx(&w.county.clone_ref(), disburse(x)),
                    })
                    .collect();
                let bytes = w.block(i as u64 + 1, prev, T0 + i as i64 * 1000, txs);
                let ha = a.commit_block(&bytes).await.unwrap().head;
                let hb = b.commit_block(&bytes).await.unwrap().head;
                assert_eq!(ha, hb, "two members fed the same block agree");
                prev = ha.hash;
            }
            assert_eq!(verify_chain(a.store(), a.config()).await, Ok(blocks.len() as u64));
        });
    }
}

const CRASH_ENV: &str = "LEDGER_CRASH_DIR";

/// The child of the crash test: commits block after block and prints each height once committed.
#[test]
#[ignore = "run only as the crash test's child process"]
fn crash_committer_child() {
    let Some(dir) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut w = World::new();
        let l = ledger(
            open(std::path::Path::new(&dir), "crash.fjall").await,
            w.config("130000"),
        )
        .await;
        let mut prev = Hash32::ZERO;
        for n in 1.. {
            let txs = vec![
                w.tx(&w.mof.clone_ref(), appropriate(100)),
                w.tx(&w.mof.clone_ref(), allocate("000000", "130000", 10)),
            ];
            prev = l
                .commit_block(&w.block(n, prev, T0 + n as i64, txs))
                .await
                .unwrap()
                .head
                .hash;
            println!("committed {n}");
        }
    });
}

#[test]
fn a_ledger_killed_mid_commit_restarts_at_its_last_full_block_and_goes_on() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_committer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acked < 25 {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the ledger did not commit 25 blocks in time");
        }
        if let Some(n) = lines
            .next()
            .expect("child exited")
            .unwrap()
            .strip_prefix("committed ")
        {
            acked = n.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL, somewhere in a commit
    child.wait().unwrap();
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("committed ") {
            acked = n.parse().unwrap();
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut w = World::new();
        let l = ledger(open(dir.path(), "crash.fjall").await, w.config("130000")).await;
        let head = l.head().await.unwrap();
        assert!(
            head.height == acked || head.height == acked + 1,
            "head {} after {acked} acknowledged commits",
            head.height
        );
        assert_eq!(
            verify_chain(l.store(), l.config()).await,
            Ok(head.height),
            "the stored chain replays cleanly"
        );
        // And the next block commits normally.
        w.nonce = 1_000_000;
        let tx = w.tx(&w.mof.clone_ref(), appropriate(1));
        let next = l
            .commit_block(&w.block(head.height + 1, head.hash, T0 + 1_000_000, vec![tx]))
            .await
            .unwrap();
        assert_eq!(next.head.height, head.height + 1);
        assert_eq!(next.valid, 1);
    });
}

#[tokio::test]
async fn reads_at_a_height_see_the_values_of_that_height() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let l = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    seed_chain(&mut w, &l).await;
    let key = fiscus_contract_executor::keys::account("000000", "edu");
    let balance = |v: Option<(u64, Vec<u8>)>| {
        v.map(|(h, b)| {
            (
                h,
                fiscus_proto::pb::state::Account::decode(&b[..])
                    .unwrap()
                    .balance_fen,
            )
        })
    };
    // Block 1 appropriated 1,000,000; block 2 allocated 500,000 away.
    assert_eq!(
        balance(l.state_at(&key, 1).await.unwrap()),
        Some((1, 1_000_000))
    );
    assert_eq!(
        balance(l.state_at(&key, 2).await.unwrap()),
        Some((2, 500_000))
    );
    assert_eq!(
        balance(l.state_at(&key, 3).await.unwrap()),
        Some((2, 500_000))
    );
    let county = fiscus_contract_executor::keys::account("130102", "edu");
    assert_eq!(
        l.state_at(&county, 1).await.unwrap(),
        None,
        "not yet funded"
    );
    // The genesis config is readable at height 0.
    assert!(
        l.state_at(fiscus_contract_executor::keys::CONFIG, 0)
            .await
            .unwrap()
            .is_some()
    );
    let hist = l.history(&key, 10).await.unwrap();
    assert_eq!(hist.iter().map(|(h, _)| *h).collect::<Vec<_>>(), vec![2, 1]);
    // Pages: the newest alone, then what lies below it.
    let first = l.history(&key, 1).await.unwrap();
    assert_eq!(first, hist[..1]);
    let rest = l.history_until(&key, first[0].0 - 1, 10).await.unwrap();
    assert_eq!(rest, hist[1..]);
    // A scan at height 1 sees only what existed then.
    let (rows, _) = l.scan_at(b"acct/", Some(b"acct0"), 1, 100).await.unwrap();
    assert_eq!(rows.len(), 1);
    let (rows, _) = l.scan_at(b"acct/", Some(b"acct0"), 3, 100).await.unwrap();
    assert_eq!(rows.len(), 3);
}

#[tokio::test]
async fn a_member_removed_by_governance_is_refused_from_the_next_block() {
    use fiscus_proto::pb::governance::{
        GovernanceCall, Proposal, ProposeArgs, RemoveMember, VoteArgs, governance_call,
        proposal::Change,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let l = ledger(open(dir.path(), "a.fjall").await, w.config("130000")).await;
    let gov = |w: &mut World, who: &Signer, m: governance_call::Method| {
        w.nonce += 1;
        let payload = TxPayload {
            consortium_id: "fiscus-test".into(),
            creator_cert_id: who.cert.to_vec(),
            nonce: w.nonce,
            client_timestamp_ms: 0,
            call: Some(Call::Governance(GovernanceCall { method: Some(m) })),
        };
        seal(&payload, &[(&who.key, who.cert)])
    };
    // Members: 000000, 130000, 130102. MOF proposes removing the county;
    // Hebei's yes makes 2 of 3.
    let mof = w.mof.clone_ref();
    let hebei = w.hebei.clone_ref();
    let propose = gov(
        &mut w,
        &mof,
        governance_call::Method::Propose(ProposeArgs {
            proposal: Some(Proposal {
                title: "130102 leaves".into(),
                change: Some(Change::RemoveMember(RemoveMember {
                    org_code: "130102".into(),
                    reason: "merged into another county".into(),
                })),
            }),
        }),
    );
    let pid = tx_id(&propose.payload);
    let h = l
        .commit_block(&w.block(1, Hash32::ZERO, T0, vec![propose]))
        .await
        .unwrap()
        .head;
    let vote = gov(
        &mut w,
        &hebei,
        governance_call::Method::Vote(VoteArgs {
            proposal_tx_id: pid.to_vec(),
            approve: true,
        }),
    );
    // In the same block as the passing vote, the county still signs validly.
    let appr = w.tx(&w.mof.clone_ref(), appropriate(1000));
    let county_same_block = w.tx(&w.county.clone_ref(), disburse(1));
    let s = l
        .commit_block(&w.block(2, h.hash, T0 + 1, vec![vote, appr, county_same_block]))
        .await
        .unwrap();
    let r2 = l.receipts(2).await.unwrap();
    assert_eq!(r2[0].status, TxStatus::Valid as i32, "{}", r2[0].reason);
    assert_ne!(r2[2].status, TxStatus::RevokedCertificate as i32);
    let cfg = l.consortium_config().await.unwrap();
    assert!(cfg.members.iter().all(|m| m.org_code != "130102"));
    assert_eq!(cfg.revoked_orgs[0].effective_height, 3);
    // From block 3 on, every certificate of the county is refused.
    let county_next = w.tx(&w.county.clone_ref(), disburse(1));
    l.commit_block(&w.block(3, s.head.hash, T0 + 2, vec![county_next]))
        .await
        .unwrap();
    let r3 = l.receipts(3).await.unwrap();
    assert_eq!(r3[0].status, TxStatus::RevokedCertificate as i32);
    // Replay from genesis agrees, governance included.
    assert_eq!(verify_chain(l.store(), l.config()).await, Ok(3));
}

#[tokio::test]
async fn blocks_committed_together_equal_blocks_committed_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let one = ledger(open(dir.path(), "one.fjall").await, w.config("130000")).await;
    let many = ledger(open(dir.path(), "many.fjall").await, w.config("130000")).await;
    // Blocks that read what the previous ones wrote: funds arrive, then move on,
    // and the same tx sent twice is a replay across blocks of one batch.
    let appr = w.tx(&w.mof.clone_ref(), appropriate(1_000_000));
    let a1 = w.tx(&w.mof.clone_ref(), allocate("000000", "130000", 300_000));
    let a2 = w.tx(&w.mof.clone_ref(), allocate("000000", "130102", 200_000));
    let d = w.tx(&w.county.clone_ref(), disburse(50_000));
    let (blocks, prev) = w.chain(vec![vec![appr], vec![a1.clone(), a2], vec![d, a1]], 1000);
    for b in &blocks {
        one.commit_block(b).await.unwrap();
    }
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    let (done, err) = many.commit_blocks(&refs).await.unwrap();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done.len(), 3);
    assert_eq!(one.head().await.unwrap(), many.head().await.unwrap());
    for n in 1..=3 {
        assert_eq!(
            one.receipts(n).await.unwrap(),
            many.receipts(n).await.unwrap()
        );
    }
    assert_eq!(
        many.receipts(3).await.unwrap()[1].status,
        TxStatus::Duplicate as i32,
        "a replay within one batch is caught"
    );
    assert_eq!(verify_chain(many.store(), many.config()).await, Ok(3));
    // A refused block stops the batch; the ones before it are committed. Block 5
    // here links to block 3, not to block 4.
    let bad = w.block(5, prev, T0 + 9000, vec![]);
    let next = w.block(4, prev, T0 + 9000, vec![]);
    let (done, err) = many
        .commit_blocks(&[next.as_slice(), bad.as_slice()])
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert!(matches!(err, Some(LedgerError::BadLink(5))), "{err:?}");
    assert_eq!(many.head().await.unwrap().height, 4);
}

/// An account that holds more closed lots than the ledger reads ahead (2,
/// ADR 0006): a payment that uses them all needs more rounds of reads, and commits the same one block at a time and in one batch (where
/// the lots come from the batch's earlier blocks), and replays.
#[tokio::test]
async fn a_payment_over_more_lots_than_read_ahead_commits_alike_one_by_one_and_in_a_batch() {
    const DAY_MS: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new();
    let one = ledger(open(dir.path(), "one.fjall").await, w.config("130000")).await;
    let many = ledger(open(dir.path(), "many.fjall").await, w.config("130000")).await;
    let mut txs = vec![vec![w.tx(&w.mof.clone_ref(), appropriate(1_000_000))]];
    // One allocation a day to the county: lots of different days never bundle.
    for _ in 0..40 {
        txs.push(vec![
            w.tx(&w.mof.clone_ref(), allocate("000000", "130102", 1_000)),
        ]);
    }
    txs.push(vec![w.tx(&w.county.clone_ref(), disburse(40_000))]);
    let (blocks, _) = w.chain(txs, DAY_MS);
    for b in &blocks {
        one.commit_block(b).await.unwrap();
    }
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    let (done, err) = many.commit_blocks(&refs).await.unwrap();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done.len(), 42);
    assert_eq!(one.head().await.unwrap(), many.head().await.unwrap());
    let paid = &one.receipts(42).await.unwrap()[0];
    assert_eq!(paid.status, TxStatus::Valid as i32, "{}", paid.reason);
    let used_up = paid
        .writes
        .iter()
        .filter(|w| w.key.starts_with(b"lot/130102/") && w.deleted)
        .count();
    // Each day's lot closed the day before's: 39 under their own keys.
    assert_eq!(used_up, 39, "the payment used up every closed lot");
    assert_eq!(many.receipts(42).await.unwrap()[0], *paid);
    // A spent lot is read at a height before the payment by its key; a scan
    // lists only the keys there are now (what the overdue report relies on).
    let first_lot = fiscus_contract_executor::keys::lot("130102", "edu", 0);
    let (written, _) = one.state_at(&first_lot, 41).await.unwrap().unwrap();
    assert_eq!(written, 3, "closed when the third day's lot arrived");
    assert_eq!(one.state_at(&first_lot, 42).await.unwrap(), None);
    let (listed, _) = one
        .scan_at(b"lot/130102/", Some(b"lot/1301020"), 41, 100)
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(verify_chain(one.store(), one.config()).await, Ok(42));
    assert_eq!(verify_chain(many.store(), many.config()).await, Ok(42));
}
