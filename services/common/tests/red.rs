//! The gRPC RED layer on a real tonic server over loopback: a unary call, a
//! refused one, a stream observed when it ends, one the client abandons, and
//! an Unimplemented answer that must not become a label.

use fiscus_common::red::GrpcMetricsLayer;
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::gossip::gossip_server::{Gossip, GossipServer};
use fiscus_proto::pb::gossip::{
    AttestationBatch, HeartbeatRequest, HeartbeatResponse, PullRequest, PushAck,
};
use fiscus_proto::pb::types::Block;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[tonic::async_trait]
impl Gossip for Svc {
    async fn push_blocks(
        &self,
        _r: Request<Streaming<Block>>,
    ) -> Result<Response<PushAck>, Status> {
        Err(Status::unimplemented("not here"))
    }
    type PullBlocksStream = futures::stream::BoxStream<'static, Result<Block, Status>>;
    async fn pull_blocks(
        &self,
        r: Request<PullRequest>,
    ) -> Result<Response<Self::PullBlocksStream>, Status> {
        let r = r.into_inner();
        let blocks =
            futures::stream::iter((r.from_height..=r.to_height).map(|_| Ok(Block::default())));
        if r.to_height > 100 {
            // A stream that never ends by itself.
            return Ok(Response::new(
                blocks.chain(futures::stream::pending()).boxed(),
            ));
        }
        Ok(Response::new(blocks.boxed()))
    }
    async fn exchange_attestations(
        &self,
        r: Request<AttestationBatch>,
    ) -> Result<Response<AttestationBatch>, Status> {
        Ok(Response::new(r.into_inner()))
    }
    async fn heartbeat(
        &self,
        r: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        if r.get_ref().member == "refuse" {
            return Err(Status::permission_denied("no"));
        }
        Ok(Response::new(HeartbeatResponse {
            member: "ok".into(),
            height: 1,
        }))
    }
}

/// The count of `fiscus_grpc_server_request_duration_seconds` for these labels.
fn count(registry: &prometheus::Registry, service: &str, method: &str, code: &str) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == "fiscus_grpc_server_request_duration_seconds")
        .flat_map(|f| f.get_metric())
        .filter(|m| {
            let l: Vec<(&str, &str)> = m
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            l.contains(&("grpc_service", service))
                && l.contains(&("grpc_method", method))
                && l.contains(&("grpc_code", code))
        })
        .map(|m| m.get_histogram().get_sample_count())
        .sum()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_observed_once_with_its_code() {
    let registry = prometheus::Registry::new();
    let layer = GrpcMetricsLayer::register(&registry).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(GossipServer::new(Svc))
            .serve_with_incoming(tokio_stream_from(listener)),
    );
    let mut client = GossipClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    const SVC: &str = "fiscus.gossip.v1.Gossip";

    client.heartbeat(HeartbeatRequest::default()).await.unwrap();
    until("an OK heartbeat", || {
        count(&registry, SVC, "Heartbeat", "OK") == 1
    })
    .await;

    let refused = client
        .heartbeat(HeartbeatRequest {
            member: "refuse".into(),
            height: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    until("a refused heartbeat", || {
        count(&registry, SVC, "Heartbeat", "PermissionDenied") == 1
    })
    .await;

    // A stream is observed at its end, once.
    let blocks: Vec<_> = client
        .pull_blocks(PullRequest {
            from_height: 1,
            to_height: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(blocks.len(), 3);
    until("the finished stream", || {
        count(&registry, SVC, "PullBlocks", "OK") == 1
    })
    .await;

    // A stream the client drops before its end counts as Cancelled.
    let mut endless = client
        .pull_blocks(PullRequest {
            from_height: 1,
            to_height: 101,
        })
        .await
        .unwrap()
        .into_inner();
    endless.next().await.unwrap().unwrap();
    drop(endless);
    until("the abandoned stream", || {
        count(&registry, SVC, "PullBlocks", "Cancelled") == 1
    })
    .await;

    // Unimplemented never names the path.
    let err = client
        .push_blocks(futures::stream::empty::<Block>())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    until("the Unimplemented answer", || {
        count(&registry, "unknown", "unknown", "Unimplemented") == 1
    })
    .await;
    assert_eq!(count(&registry, SVC, "PushBlocks", "Unimplemented"), 0);
    // Nothing was observed twice.
    assert_eq!(count(&registry, SVC, "Heartbeat", "OK"), 1);
    assert_eq!(count(&registry, SVC, "PullBlocks", "OK"), 1);
}

/// The accepted connections of `listener`, as tonic's `serve_with_incoming` takes them.
fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(s, _)| s);
        Some((accepted, l))
    })
}
