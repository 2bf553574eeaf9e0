//! The orderer follower: this member's copy of the orderers' `Deliver`
//! stream, from its next height, failing over between orderers.

use crate::chain::verify_block;
use crate::node::{Incoming, Node, Source};
use fiscus_common::tls::Endpoint;
use fiscus_proto::pb::orderer::DeliverRequest;
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

/// Follows the orderers' `Deliver` streams from this member's next height,
/// failing over between them.
pub(crate) async fn orderer_follower(node: Arc<Node>, orderers: Vec<Endpoint>) {
    let mut backoff = Duration::from_millis(100);
    for ep in orderers.iter().cycle() {
        match follow(&node, ep).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                node.readiness
                    .set("orderer", Err(format!("{}: {e}", ep.addr)));
                tracing::debug!(orderer = %ep.addr, error = %e, "orderer stream ended");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn follow(node: &Arc<Node>, ep: &Endpoint) -> Result<(), String> {
    let ch = tokio::time::timeout(
        Duration::from_secs(5),
        fiscus_common::tls::connect_channel(&ep.addr, &ep.server_name, node.tls.clone()),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut c = OrdererClient::new(ch).max_decoding_message_size(node.cfg.max_message_bytes);
    let from = node.height() + 1;
    let mut stream = c
        .deliver(DeliverRequest { from_height: from })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    node.readiness.set("orderer", Ok(()));
    while let Some(b) = stream.next().await {
        let b = b.map_err(|s| s.message().to_owned())?;
        match verify_block(&node.certs, &node.limits, b) {
            Ok(v) => {
                node.metrics.knows(v.number);
                if v.number <= node.height() {
                    continue;
                }
                node.inbox
                    .send(Incoming::Block(
                        Box::new(v),
                        Source::Orderer(ep.addr.clone()),
                    ))
                    .await
                    .map_err(|_| "gateway stopping".to_owned())?;
            }
            Err(e) => {
                node.blame(&Source::Orderer(ep.addr.clone()), &e);
                return Err(e.to_string());
            }
        }
    }
    Err("the orderer closed the stream".into())
}
