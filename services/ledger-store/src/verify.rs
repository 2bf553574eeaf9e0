//! `fiscus verify --data-dir`: re-check a member's whole stored chain offline.

use crate::keys;
use crate::ledger::{Head, LedgerConfig, genesis_head, replay};
use crate::seen::Seen;
use fiscus_common::store::StateStore;
use fiscus_contract_executor::executor::KeyValues;
use std::collections::BTreeSet;

/// The first problem found, with the height it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub height: u64,
    pub problem: String,
}

/// Replays every stored block from genesis: links, signatures, `tx_root`,
/// execution, `state_hash` and `receipts_root` against the stored ones, and
/// finally the stored state against the replayed state. Returns the verified
/// height, or the first bad height.
pub async fn verify_chain<S: StateStore>(store: &S, cfg: &LedgerConfig) -> Result<u64, Finding> {
    let err = |height: u64, problem: String| Finding { height, problem };
    let stored_head = match store
        .get(keys::HEAD)
        .await
        .map_err(|e| err(0, e.to_string()))?
    {
        Some(v) => Head::decode(&v.value).map_err(|e| err(0, e.to_string()))?,
        None => return Ok(0),
    };
    let genesis = match store
        .get(keys::GENESIS)
        .await
        .map_err(|e| err(0, e.to_string()))?
    {
        Some(v) => v.value,
        None => return Err(err(0, "the genesis configuration is missing".into())),
    };
    let mut head = genesis_head(&genesis);
    let stored_genesis = store
        .get(&keys::block_meta(0))
        .await
        .map_err(|e| err(0, e.to_string()))?
        .map(|m| Head::decode(&m.value))
        .transpose()
        .map_err(|e| err(0, e.to_string()))?;
    if stored_genesis != Some(head) {
        return Err(err(
            0,
            "the genesis state hash differs from the genesis config".into(),
        ));
    }
    let mut state = KeyValues::new();
    state.insert(
        fiscus_contract_executor::keys::CONFIG.to_vec(),
        Some(genesis.clone()),
    );
    let mut last_writer: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
    last_writer.insert(fiscus_contract_executor::keys::CONFIG.to_vec(), 0);
    let mut seen = Seen::default();
    for n in 1..=stored_head.height {
        let bytes = match store
            .get(&keys::block(n))
            .await
            .map_err(|e| err(n, e.to_string()))?
        {
            Some(v) => v.value,
            None => return Err(err(n, "block is missing".into())),
        };
        let p = replay(cfg, &head, &bytes, &state, &seen).map_err(|e| err(n, e.to_string()))?;
        let meta = store
            .get(&keys::block_meta(n))
            .await
            .map_err(|e| err(n, e.to_string()))?;
        let stored = meta
            .map(|m| Head::decode(&m.value))
            .transpose()
            .map_err(|e| err(n, e.to_string()))?;
        if stored != Some(p.head) {
            return Err(err(
                n,
                "stored block hash, state hash or receipts root differs from the replay".into(),
            ));
        }
        for (k, v) in p.writes {
            last_writer.insert(k.clone(), n);
            state.insert(k, v);
        }
        seen.absorb(&p.indexed, &p.nonces);
        head = p.head;
    }
    if head != stored_head {
        return Err(err(
            stored_head.height,
            "head record differs from the replay".into(),
        ));
    }
    // The stored state must be exactly the replayed state, each value tagged
    // with the block that last wrote it. Read in pages: the store caps a scan.
    let mut found = BTreeSet::new();
    let mut from = b"s/".to_vec();
    let end = fiscus_common::store::prefix_end(b"s/");
    loop {
        let page = store
            .range(&from, end.as_deref(), 1000)
            .await
            .map_err(|e| err(head.height, e.to_string()))?;
        let Some((last, _)) = page.last() else { break };
        from = [last.as_slice(), &[0u8]].concat();
        for (k, v) in &page {
            let ck = k[2..].to_vec();
            let replayed = state.get(&ck).cloned().flatten();
            let writer = last_writer.get(&ck).copied();
            let stored = keys::decode_state(&v.value);
            if stored.map(|(h, _)| Some(h)) != Some(writer)
                || replayed.as_deref() != stored.map(|(_, v)| v)
            {
                return Err(err(
                    writer.unwrap_or(head.height),
                    format!(
                        "state value {} differs from the replay",
                        String::from_utf8_lossy(&ck)
                    ),
                ));
            }
            found.insert(ck);
        }
        if page.len() < 1000 {
            break;
        }
    }
    if let Some((k, h)) = state
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .find(|k| !found.contains(*k))
        .map(|k| (k.clone(), last_writer.get(k).copied().unwrap_or(0)))
    {
        return Err(err(
            h,
            format!("state value {} is missing", String::from_utf8_lossy(&k)),
        ));
    }
    Ok(head.height)
}

/// What an offline check needs, read from a member's store alone: the
/// consortium id from genesis and the signer certificates the ledger recorded.
pub async fn offline_config<S: StateStore>(store: &S) -> crate::Result<LedgerConfig> {
    use prost::Message;
    let genesis = store
        .get(keys::GENESIS)
        .await?
        .ok_or(crate::LedgerError::NoGenesis)?
        .value;
    let genesis = fiscus_proto::pb::types::ConsortiumConfig::decode(&genesis[..])
        .map_err(|e| crate::LedgerError::Corrupt(format!("genesis: {e}")))?;
    let mut certs = crate::Certs::default();
    let mut from = keys::CERT_PREFIX.to_vec();
    let end = fiscus_common::store::prefix_end(keys::CERT_PREFIX);
    loop {
        let rows = store.range(&from, end.as_deref(), 1000).await?;
        let Some((last, _)) = rows.last() else { break };
        from = [last.as_slice(), &[0u8]].concat();
        for (k, v) in &rows {
            let id = std::str::from_utf8(&k[2..])
                .ok()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| fiscus_proto::hash::Hash32::from_slice("cert id", &b).ok())
                .ok_or_else(|| crate::LedgerError::Corrupt("certificate key".into()))?;
            let split = v.value.iter().position(|b| *b == 0);
            let (org, pk) = match split {
                Some(i) if v.value.len() == i + 33 => (&v.value[..i], &v.value[i + 1..]),
                _ => return Err(crate::LedgerError::Corrupt("certificate record".into())),
            };
            let pk: [u8; 32] = pk
                .try_into()
                .map_err(|_| crate::LedgerError::Corrupt("certificate key".into()))?;
            certs.insert_key(id, &String::from_utf8_lossy(org), pk);
        }
        if rows.len() < 1000 {
            break;
        }
    }
    Ok(LedgerConfig {
        member: String::new(),
        consortium_id: genesis.consortium_id,
        limits: fiscus_proto::DecodeLimits::default(),
        certs,
        // Replay signs nothing; this key is never used.
        key: fiscus_proto::sign::SigningKey::from_seed(&[0; 32]),
        cert_id: fiscus_proto::hash::Hash32::default(),
        certificate: Vec::new(),
        threads: std::thread::available_parallelism().map_or(2, usize::from),
    })
}
