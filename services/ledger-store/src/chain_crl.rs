//! The CRL on chain is the one every link enforces. The consortium config
//! carries it (`ConsortiumConfig.crl`, changed by governance); a CRL file is
//! only a cache of it. A member's services follow their ledger-store: when
//! the CRL number at the head grows, they read the config and install its
//! X.509 CRL in their TLS context ([`TlsContext::set_crl`], which never goes
//! back to an older number and closes the connections of newly revoked peers).

use fiscus_common::tls::TlsContext;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::ledger::{ChainInfoRequest, GetStateRequest};
use fiscus_proto::pb::types::ConsortiumConfig;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// How often a service asks its ledger-store for the CRL number at the head.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Installs `config`'s CRL in `tls` if it is newer than the one in force.
/// Returns whether it was installed.
pub fn apply(tls: &TlsContext, config: &ConsortiumConfig) -> bool {
    let Some(crl) = config.crl.as_ref().filter(|c| !c.x509_der.is_empty()) else {
        return false;
    };
    if tls
        .revocations()
        .crl_number()
        .is_some_and(|have| have >= crl.number)
    {
        return false;
    }
    // One CRL per root: the Ed25519 root's, and the ECDSA TLS root's when the
    // CA signed one.
    let ders = std::iter::once(crl.x509_der.clone())
        .chain((!crl.x509_der_ecdsa.is_empty()).then(|| crl.x509_der_ecdsa.clone()))
        .collect();
    match tls.set_crls(ders) {
        Ok(installed) => {
            if installed {
                tracing::info!(
                    crl_number = crl.number,
                    revoked = crl.revoked.len(),
                    "installed the CRL on chain"
                );
            }
            installed
        }
        Err(e) => {
            tracing::error!(error = %e, crl_number = crl.number, "the CRL on chain does not parse; keeping the current one");
            false
        }
    }
}

/// Follows the CRL on chain through `ledger`, forever.
pub async fn follow(tls: Arc<TlsContext>, mut ledger: LedgerClient<Channel>) {
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(info) = ledger.get_chain_info(ChainInfoRequest {}).await else {
            continue;
        };
        let number = info.into_inner().crl_number;
        if number == 0
            || tls
                .revocations()
                .crl_number()
                .is_some_and(|have| have >= number)
        {
            continue;
        }
        let state = ledger
            .get_state(GetStateRequest {
                key: fiscus_contract_executor::keys::CONFIG.to_vec(),
                at_height: 0,
            })
            .await;
        match state.map(|r| ConsortiumConfig::decode(&r.into_inner().value[..])) {
            Ok(Ok(config)) => {
                apply(&tls, &config);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "the consortium config does not decode"),
            Err(s) => tracing::debug!(error = %s, "could not read the consortium config"),
        }
    }
}
