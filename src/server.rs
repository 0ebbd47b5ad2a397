//! A whole running node: store, writer, the two gRPC servers and the link to the parent.
//! `liandong serve`, the demo and the integration tests all start nodes through [`start`].
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::api::auth::{ApiCredential, ApiToken, BearerAuth};
use crate::api::{CommitteeService, FederationService};
use crate::clock::Clock;
use crate::node::{Node, NodeSettings};
use crate::pb;
use crate::store::{NodeStore, Storage};
use crate::sync::{run_parent_link, Connector, SyncSettings, TonicConnector};
use crate::tls::Transport;
use crate::{Error, Result};

/// Everything needed to run one node.
#[derive(Clone)]
pub struct NodeOptions {
    pub settings: NodeSettings,
    pub key: SigningKey,
    /// The sled store's folder.
    pub store_dir: PathBuf,
    /// The engine of a new store (an existing one is opened with its own).
    pub engine: crate::store::EngineKind,
    /// sled page cache; small by default (a county office PC is not a server).
    pub cache_bytes: u64,
    /// Where other nodes reach the `Federation` service.
    pub federation_listen: SocketAddr,
    /// Where local clients reach the `Committee` service (loopback by default).
    pub api_listen: SocketAddr,
    /// The parent committee and its `Federation` address (`https://host:port`); None at the root.
    pub parent: Option<(String, String)>,
    pub sync: SyncSettings,
    /// Mutual TLS on the federation port and the parent link, or (`--insecure`) plaintext.
    pub transport: Transport,
    /// Lateral peers: members of this node's lateral groups, each the root of another
    /// federation (their CAs are in `transport`). The lower code of a pair dials.
    pub peers: Vec<PeerOptions>,
}

impl NodeOptions {
    /// The node's store, with the engine that wrote it (or `engine` for a new one).
    pub fn open_engine(&self) -> Result<Arc<dyn Storage>> {
        crate::store::open_engine(&self.store_dir, self.engine, self.cache_bytes)
    }
}

/// One lateral peer (`[[peers]]` in the config).
#[derive(Clone, Debug)]
pub struct PeerOptions {
    pub code: String,
    /// Its `Federation` address; needed only when this node dials it (our code is lower).
    pub address: Option<String>,
}

pub struct RunningNode {
    pub node: Node,
    pub federation_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// Who may use the local API and the console.
    credential: ApiCredential,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens the store and starts the node. The local API and the console take a token made
/// up for this run and held in memory only ([`RunningNode::api_token`]): the demo and the
/// tests, which use the [`Node`] directly. `liandong serve` uses [`start_authorized`].
pub async fn start(opts: NodeOptions, clock: Arc<dyn Clock>) -> Result<RunningNode> {
    start_authorized(opts, ApiCredential::ephemeral(), clock).await
}

/// Opens the store and starts the node; the local API and the console accept `credential`.
pub async fn start_authorized(
    opts: NodeOptions,
    credential: ApiCredential,
    clock: Arc<dyn Clock>,
) -> Result<RunningNode> {
    let engine = opts.open_engine()?;
    let connector = Arc::new(
        TonicConnector::new(opts.transport.clone()).max_message_bytes(opts.sync.max_message_bytes),
    );
    let running =
        start_with_credential(opts, NodeStore::new(engine), clock, connector, credential).await?;
    // What start-up built and let go (certificates parsed, descriptors for reflection, the
    // store's index buffers) goes back to the system rather than sit in an idle node.
    crate::memory::release_freed();
    Ok(running)
}

/// Starts a node over a given store and connector (tests, simulation), with an in-memory
/// API token.
pub async fn start_with(
    opts: NodeOptions,
    store: NodeStore,
    clock: Arc<dyn Clock>,
    connector: Arc<dyn Connector>,
) -> Result<RunningNode> {
    start_with_credential(opts, store, clock, connector, ApiCredential::ephemeral()).await
}

/// Starts a node over a given store and connector, with the given API credential.
pub async fn start_with_credential(
    opts: NodeOptions,
    store: NodeStore,
    clock: Arc<dyn Clock>,
    connector: Arc<dyn Connector>,
    credential: ApiCredential,
) -> Result<RunningNode> {
    // The federation port: mutual TLS, unless the node was started `--insecure`.
    let mut fed_server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        // HTTP/2's default 64 KiB windows hold a stream to one window per round trip:
        // 114,000 events/s on loopback, far less over a county's long link. Fixed large
        // windows rather than hyper's adaptive one, whose BDP pings dropped links under load
        // here ("h2 protocol error", as in hyper#2526).
        .initial_stream_window_size(Some(crate::sync::link::STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(crate::sync::link::CONNECTION_WINDOW_BYTES));
    if let Transport::Tls(tls) = &opts.transport {
        fed_server = fed_server
            .tls_config(tls.server_config())
            .map_err(|e| Error::Config(format!("the node's TLS certificate or key: {e}")))?;
    }
    let node = Node::open(opts.settings.clone(), opts.key.clone(), store, clock)?;
    let fed_listener = TcpListener::bind(opts.federation_listen)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot listen on {} for the federation: {e}",
                opts.federation_listen
            ))
        })?;
    let api_listener = TcpListener::bind(opts.api_listen).await.map_err(|e| {
        Error::Config(format!(
            "cannot listen on {} for the local API: {e}",
            opts.api_listen
        ))
    })?;
    let federation_addr = fed_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    let mut tasks = Vec::new();
    // Both servers also carry gRPC health (NOT_SERVING once shutdown starts) and reflection.
    let health = crate::telemetry::health(&node).await;
    let (fed_reflection, fed_reflection_alpha) =
        crate::telemetry::reflection(crate::telemetry::FEDERATION_SERVICE)?;
    let (api_reflection, api_reflection_alpha) =
        crate::telemetry::reflection(crate::telemetry::COMMITTEE_SERVICE)?;

    let fed = pb::federation_server::FederationServer::new(FederationService {
        node: node.clone(),
        settings: opts.sync.clone(),
        tls: opts.transport.is_tls(),
        lateral: crate::sync::link::Accept {
            peers: opts.peers.iter().map(|p| p.code.clone()).collect(),
            certificate: None,
        },
        node_tls: match &opts.transport {
            Transport::Tls(t) => Some(t.clone()),
            Transport::Insecure => None,
        },
    })
    .max_decoding_message_size(opts.sync.max_message_bytes)
    .max_encoding_message_size(opts.sync.max_message_bytes);
    let mut stop = node.subscribe_shutdown();
    let fed_health = health.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = fed_server
            .add_service(fed)
            .add_service(fed_health)
            .add_service(fed_reflection)
            .add_service(fed_reflection_alpha)
            .serve_with_incoming_shutdown(TcpListenerStream::new(fed_listener), shutdown)
            .await
        {
            tracing::error!(error = %e, "federation server failed");
        }
    }));

    let api = pb::committee_server::CommitteeServer::new(CommitteeService { node: node.clone() })
        .max_decoding_message_size(4 * 1024 * 1024);
    // Every Committee call needs the token; the console (same port, HTTP/1.1 for browsers)
    // checks the same token itself.
    let api = tonic::service::interceptor::InterceptedService::new(
        api,
        BearerAuth::new(credential.clone()),
    );
    // Health and reflection answer without the token: probes and grpcurl need no secret.
    let grpc = tonic::service::Routes::new(api)
        .add_service(health)
        .add_service(api_reflection)
        .add_service(api_reflection_alpha);
    let routes = crate::console::routes(grpc, node.clone(), credential.clone());
    let mut stop = node.subscribe_shutdown();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(api_listener), shutdown)
            .await
        {
            tracing::error!(error = %e, "local API server failed");
        }
    }));

    if let Some((parent, address)) = opts.parent.clone() {
        tasks.push(tokio::spawn(run_parent_link(
            node.clone(),
            parent,
            address,
            connector.clone(),
            opts.sync.clone(),
        )));
    }
    for peer in &opts.peers {
        match &peer.address {
            Some(address) if crate::sync::dials(node.code(), &peer.code) => {
                tasks.push(tokio::spawn(crate::sync::run_peer_link(
                    node.clone(),
                    peer.code.clone(),
                    address.clone(),
                    connector.clone(),
                    opts.sync.clone(),
                )));
            }
            _ => node.update_link(&peer.code, |l| {
                l.role = crate::sync::Role::Peer.name();
                l.state = "waiting for it to dial";
            }),
        }
    }
    info!(committee = node.code(), %federation_addr, %api_addr, "node started");
    Ok(RunningNode {
        node,
        federation_addr,
        api_addr,
        credential,
        tasks,
    })
}

impl RunningNode {
    pub fn federation_url(&self) -> String {
        format!("http://{}", self.federation_addr)
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The token the local API and the console accept.
    pub fn api_token(&self) -> &ApiToken {
        &self.credential.token
    }

    /// The console's address with the token, to open once in a browser.
    pub fn console_url(&self) -> String {
        format!(
            "http://{}/?token={}",
            self.api_addr,
            self.credential.token.secret()
        )
    }

    /// Stops links and servers, lets the writer finish and sync, and releases the store.
    pub async fn stop(self) {
        self.node.shutdown();
        // Streams end when their sessions see the shutdown, but a peer that stopped reading
        // (a frozen county PC) can hold a graceful HTTP/2 close open: give the servers 2 s
        // together, then cut them.
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(
            Duration::from_secs(2),
            futures::future::join_all(self.tasks),
        )
        .await
        .is_err()
        {
            for a in aborts {
                a.abort();
            }
        }
        self.node.close().await;
    }
}
