//! `OrdererAdmin`: membership changes through Raft conf changes, for admin
//! certificates. Governance transactions will drive this later.

use crate::config::Peer;
use crate::node::{ChangeMembership, NodeHandles, RaftNode};
use actix::Addr;
use fiscus_common::codes;
use fiscus_common::tls::peer_identity;
use fiscus_proto::pb::orderer::orderer_admin_server::OrdererAdmin;
use fiscus_proto::pb::orderer::{AddNodeRequest, RemoveNodeRequest, StatusResponse};
use fiscus_proto::pb::types::Role;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub(crate) struct AdminService {
    pub node: Addr<RaftNode>,
    pub handles: NodeHandles,
    pub transport: crate::transport::Transport,
}

fn require_admin<T>(req: &Request<T>) -> Result<(), Status> {
    match peer_identity(req) {
        Some(id) if id.role == Role::Admin => Ok(()),
        _ => Err(fiscus_common::ServiceError::new(
            fiscus_common::ErrorKind::PermissionDenied,
            codes::orderer::ADMIN_ONLY,
            "membership changes need an admin certificate",
        )
        .into()),
    }
}

impl AdminService {
    async fn change(&self, change: ChangeMembership) -> Result<Response<StatusResponse>, Status> {
        self.node
            .send(change)
            .await
            .map_err(|_| {
                Status::from(fiscus_common::error::ServiceError::new(
                    fiscus_common::error::ErrorKind::Unavailable,
                    codes::orderer::STOPPED,
                    "the raft node has stopped",
                ))
            })?
            .map_err(Status::from)?;
        Ok(Response::new(crate::service::status_response(
            &self.handles,
            &self.transport,
        )))
    }
}

#[tonic::async_trait]
impl OrdererAdmin for AdminService {
    async fn add_node(
        &self,
        req: Request<AddNodeRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        require_admin(&req)?;
        let r = req.into_inner();
        if r.raft_id == 0
            || r.raft_endpoint.is_empty()
            || r.client_endpoint.is_empty()
            || r.server_name.is_empty()
        {
            return Err(bad_request(
                "raft_id, raft_endpoint, client_endpoint and server_name are required",
            ));
        }
        if [&r.raft_endpoint, &r.client_endpoint, &r.server_name]
            .iter()
            .any(|s| s.len() > 255)
        {
            return Err(bad_request("an endpoint or name is longer than 255 bytes"));
        }
        self.change(ChangeMembership::Add(Peer {
            id: r.raft_id,
            raft_addr: r.raft_endpoint,
            client_addr: r.client_endpoint,
            server_name: r.server_name,
        }))
        .await
    }

    async fn remove_node(
        &self,
        req: Request<RemoveNodeRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        require_admin(&req)?;
        let id = req.into_inner().raft_id;
        if id == 0 {
            return Err(bad_request("raft_id is required"));
        }
        self.change(ChangeMembership::Remove(id)).await
    }
}

fn bad_request(message: &str) -> Status {
    Status::from(fiscus_common::error::ServiceError::new(
        fiscus_common::error::ErrorKind::InvalidArgument,
        codes::orderer::BAD_REQUEST,
        message,
    ))
}
