//! `Federation`: a child opens one long-lived `Sync` stream to its parent.
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;
use crate::pb;
use crate::sync::{link::accept_link, link::Accept, SyncSettings};

pub struct FederationService {
    pub node: Node,
    pub settings: SyncSettings,
    /// Whether callers are authenticated by a client certificate (mutual TLS); false only on
    /// a node running `--insecure`.
    pub tls: bool,
    /// Lateral peers that dial this node, and this node's TLS material (to check that a
    /// caller's certificate comes from the CA its kind of link needs).
    pub lateral: Accept,
    pub node_tls: Option<std::sync::Arc<crate::tls::NodeTls>>,
}

type FrameOut = Pin<Box<dyn Stream<Item = Result<pb::SyncFrame, Status>> + Send>>;

#[tonic::async_trait]
impl pb::federation_server::Federation for FederationService {
    type SyncStream = FrameOut;

    async fn sync(
        &self,
        request: Request<Streaming<pb::SyncFrame>>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        let certified = if self.tls {
            Some(certified_committee(&request)?)
        } else {
            None
        };
        let mut accept = self.lateral.clone();
        if let (true, Some(tls)) = (self.tls, &self.node_tls) {
            let leaf = request
                .peer_certs()
                .and_then(|c| c.first().map(|d| d.as_ref().to_vec()))
                .unwrap_or_default();
            accept.certificate = Some((tls.clone(), leaf));
        }
        let inbound = request.into_inner();
        let out = accept_link(
            self.node.clone(),
            inbound,
            self.settings.clone(),
            certified,
            &accept,
        )
        .await?;
        Ok(Response::new(Box::pin(out.map(Ok))))
    }
}

/// The committee the caller's client certificate names. The TLS layer has already checked
/// that the certificate comes from the federation's CA.
fn certified_committee<T>(request: &Request<T>) -> Result<String, Status> {
    let certs = request.peer_certs().ok_or_else(|| {
        Status::unauthenticated(
            "no client certificate: node links need mutual TLS with a certificate from `liandong certs issue`",
        )
    })?;
    let leaf = certs.first().ok_or_else(|| {
        Status::unauthenticated("an empty client certificate chain: present this node's node.crt")
    })?;
    crate::tls::committee_of(leaf).map_err(|e| {
        Status::permission_denied(format!(
            "the client certificate does not name one committee: {e}"
        ))
    })
}
