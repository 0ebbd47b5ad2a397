//! A federation of real nodes in one process: each with its own sled store in a folder of
//! its own and its own gRPC ports on 127.0.0.1. The demo and the integration tests build on
//! it. Restarting a node keeps its folder, key and ports, so its links come back as they
//! would on a real machine.
//!
//! Links run over mutual TLS by default, as real nodes do: [`Federation::new`] makes a CA
//! and a certificate for every committee (written under `<dir>/tls/<code>/` too, for a look
//! with openssl). [`Federation::new_insecure`] runs plaintext, for comparison.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use crate::clock::{Clock, SystemClock};
use crate::domain::Level;
use crate::node::{Node, NodeSettings};
use crate::server::{self, NodeOptions, RunningNode};
use crate::sync::{SyncSettings, TonicConnector};
use crate::tls::{Authority, NodeTls, Transport};
use crate::{Error, Result};

/// One committee of the federation.
#[derive(Clone, Debug)]
pub struct Spec {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
}

impl Spec {
    pub fn new(code: &str, name: &str, parent: Option<&str>) -> Spec {
        Spec {
            code: code.into(),
            name: name.into(),
            parent: parent.map(Into::into),
        }
    }
}

/// Gansu as in the demo: the province, 兰州市 and 白银市, two counties under each.
pub fn gansu() -> Vec<Spec> {
    vec![
        Spec::new("620000", "甘肃省政协", None),
        Spec::new("620100", "兰州市政协", Some("620000")),
        Spec::new("620400", "白银市政协", Some("620000")),
        Spec::new("620123", "榆中县政协", Some("620100")),
        Spec::new("620121", "永登县政协", Some("620100")),
        Spec::new("620421", "靖远县政协", Some("620400")),
        Spec::new("620422", "会宁县政协", Some("620400")),
    ]
}

pub struct Federation {
    pub specs: Vec<Spec>,
    /// Keeps the temporary folder alive as long as the federation.
    _tmp: Option<tempfile::TempDir>,
    pub dir: PathBuf,
    keys: BTreeMap<String, SigningKey>,
    root: String,
    running: BTreeMap<String, RunningNode>,
    /// Federation and API addresses of each node that has run, reused on restart.
    addresses: BTreeMap<String, (SocketAddr, SocketAddr)>,
    pub clock: Arc<dyn Clock>,
    pub sync: SyncSettings,
    /// The engine of the nodes' stores (`[node] engine`'s default unless a test or a
    /// benchmark sets it).
    pub engine: crate::store::EngineKind,
    /// The federation's CA and each committee's TLS material; None: plaintext.
    tls: Option<FixtureTls>,
    /// Per committee: what to put between its parent link and the network (tests of a
    /// misbehaving relay wrap the real connector).
    connector_wrappers: BTreeMap<String, ConnectorWrapper>,
    /// Lateral peers of a committee (the root), members of its lateral groups in other
    /// federations: set by [`crate::fixture_groups`] before the node starts.
    pub peers: BTreeMap<String, Vec<FixturePeer>>,
}

/// A lateral peer as a node of this federation is configured with it (`[[peers]]`).
#[derive(Clone, Debug)]
pub struct FixturePeer {
    pub code: String,
    /// Its Federation address, when this node dials it (this node's code is lower).
    pub address: Option<String>,
    /// The CA certificate (PEM) of the peer's federation; None in plaintext.
    pub ca_pem: Option<String>,
}

/// Wraps the connector a node dials its parent with.
pub type ConnectorWrapper =
    Arc<dyn Fn(Arc<dyn crate::sync::Connector>) -> Arc<dyn crate::sync::Connector> + Send + Sync>;

struct FixtureTls {
    ca: Authority,
    nodes: BTreeMap<String, Arc<NodeTls>>,
}

impl Federation {
    /// How many registrations `code` holds once the roster has settled: those of its
    /// lineage — its ancestors, itself and everything below it (`audience::Kind::Lineage`).
    pub fn lineage_size(&self, code: &str) -> usize {
        let parent = |c: &str| {
            self.specs
                .iter()
                .find(|s| s.code == c)
                .and_then(|s| s.parent.clone())
        };
        let is_above = |upper: &str, c: &str| {
            let mut cur = parent(c);
            while let Some(p) = cur {
                if p == upper {
                    return true;
                }
                cur = parent(&p);
            }
            false
        };
        self.specs
            .iter()
            .filter(|s| s.code == code || is_above(&s.code, code) || is_above(code, &s.code))
            .count()
    }

    /// A federation in a fresh temporary folder, over mutual TLS; nothing runs yet.
    pub fn new(specs: Vec<Spec>) -> Result<Federation> {
        let mut fed = Federation::new_insecure(specs)?;
        let ca = Authority::generate("liandong fixture", 30)?;
        let mut nodes = BTreeMap::new();
        for s in &fed.specs {
            let issued = ca.issue(&s.code, 30)?;
            issued.write(&fed.dir.join("tls").join(&s.code), true)?;
            nodes.insert(s.code.clone(), Arc::new(issued.to_node_tls()?));
        }
        fed.tls = Some(FixtureTls { ca, nodes });
        Ok(fed)
    }

    /// A federation whose links run in plaintext, as with `serve --insecure`.
    pub fn new_insecure(specs: Vec<Spec>) -> Result<Federation> {
        let tmp = tempfile::Builder::new().prefix("liandong-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        let root = specs
            .iter()
            .find(|s| s.parent.is_none())
            .map(|s| s.code.clone())
            .ok_or_else(|| {
                Error::Config("a federation needs one committee without a parent".into())
            })?;
        let keys = specs
            .iter()
            .map(|s| (s.code.clone(), crate::event::generate_key()))
            .collect();
        Ok(Federation {
            specs,
            _tmp: Some(tmp),
            dir,
            keys,
            root,
            running: BTreeMap::new(),
            addresses: BTreeMap::new(),
            clock: Arc::new(SystemClock),
            sync: SyncSettings {
                heartbeat: Duration::from_secs(2),
                ..SyncSettings::default()
            },
            engine: crate::store::EngineKind::default(),
            tls: None,
            connector_wrappers: BTreeMap::new(),
            peers: BTreeMap::new(),
        })
    }

    /// Whether links run over mutual TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The federation's CA (None in plaintext).
    pub fn ca(&self) -> Option<&Authority> {
        self.tls.as_ref().map(|t| &t.ca)
    }

    /// How `code`'s node carries its links: its TLS material, or plaintext.
    pub fn transport(&self, code: &str) -> Result<Transport> {
        match &self.tls {
            None => Ok(Transport::Insecure),
            Some(t) => {
                let mut tls = t
                    .nodes
                    .get(code)
                    .ok_or_else(|| Error::NotFound(format!("no TLS certificate for {code}")))?
                    .clone();
                for p in self.peers.get(code).into_iter().flatten() {
                    if let Some(pem) = &p.ca_pem {
                        tls = Arc::new((*tls).clone().with_peer_ca(&p.code, pem)?);
                    }
                }
                Ok(Transport::Tls(tls))
            }
        }
    }

    /// The root committee of this federation (its trust anchor).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Makes `code`'s node present another certificate from its next start on (tests of
    /// refusals: a node with another committee's certificate, or one from another CA).
    pub fn set_tls(&mut self, code: &str, tls: NodeTls) -> Result<()> {
        match &mut self.tls {
            Some(t) => {
                t.nodes.insert(code.to_string(), Arc::new(tls));
                Ok(())
            }
            None => Err(Error::Config(
                "this federation runs in plaintext; it has no certificates to replace".into(),
            )),
        }
    }

    /// A Federation client to `target`'s node that authenticates as committee `as_code`
    /// (with its certificate), as that committee's node would dial it.
    pub async fn federation_client(
        &self,
        target: &str,
        as_code: &str,
    ) -> Result<crate::pb::federation_client::FederationClient<tonic::transport::Channel>> {
        let address = self.running(target)?.federation_url();
        let channel = TonicConnector::new(self.transport(as_code)?)
            .channel(target, &address)
            .await?;
        Ok(crate::pb::federation_client::FederationClient::new(channel))
    }

    pub fn spec(&self, code: &str) -> Result<&Spec> {
        self.specs
            .iter()
            .find(|s| s.code == code)
            .ok_or_else(|| Error::NotFound(format!("no committee {code} in this federation")))
    }

    pub fn store_dir(&self, code: &str) -> PathBuf {
        self.dir.join(code)
    }

    pub fn key(&self, code: &str) -> Result<&SigningKey> {
        self.keys
            .get(code)
            .ok_or_else(|| Error::NotFound(format!("no key for {code}")))
    }

    /// Starts a node (again). Its parent must have run before, so that its address is known.
    pub async fn start(&mut self, code: &str) -> Result<()> {
        if self.running.contains_key(code) {
            return Ok(());
        }
        let spec = self.spec(code)?.clone();
        let parent = match &spec.parent {
            Some(p) => {
                let (fed, _) = self.addresses.get(p).ok_or_else(|| {
                    Error::Config(format!(
                        "start the parent {p} before {code}, so its address is known"
                    ))
                })?;
                Some((p.clone(), format!("http://{fed}")))
            }
            None => None,
        };
        let (fed, api) = self.addresses.get(code).copied().unwrap_or((
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ));
        let opts = NodeOptions {
            settings: NodeSettings {
                code: code.to_string(),
                root_code: self.root.clone(),
                root_key: self.key(&self.root)?.verifying_key(),
                max_clock_skew_ms: 300_000,
                max_group: 256,
            },
            key: self.key(code)?.clone(),
            store_dir: self.store_dir(code),
            // What a node gets from the default config, so that benchmarks measure that.
            engine: self.engine,
            cache_bytes: crate::config::NodeSection::default().cache_mb << 20,
            federation_listen: fed,
            api_listen: api,
            parent,
            sync: self.sync.clone(),
            transport: self.transport(code)?,
            peers: self
                .peers
                .get(code)
                .into_iter()
                .flatten()
                .map(|p| server::PeerOptions {
                    code: p.code.clone(),
                    address: p.address.clone(),
                })
                .collect(),
        };
        let running = match self.connector_wrappers.get(code) {
            None => server::start(opts, self.clock.clone()).await?,
            Some(wrap) => {
                let engine = opts.open_engine()?;
                let connector = wrap(Arc::new(
                    TonicConnector::new(opts.transport.clone())
                        .max_message_bytes(opts.sync.max_message_bytes),
                ));
                server::start_with(
                    opts,
                    crate::store::NodeStore::new(engine),
                    self.clock.clone(),
                    connector,
                )
                .await?
            }
        };
        self.addresses.insert(
            code.to_string(),
            (running.federation_addr, running.api_addr),
        );
        self.running.insert(code.to_string(), running);
        Ok(())
    }

    /// Puts `wrap` between `code`'s parent link and the network from its next start on.
    pub fn wrap_connector(&mut self, code: &str, wrap: ConnectorWrapper) {
        self.connector_wrappers.insert(code.to_string(), wrap);
    }

    /// Stops a node cleanly; its store stays.
    pub async fn stop(&mut self, code: &str) {
        if let Some(r) = self.running.remove(code) {
            r.stop().await;
        }
    }

    pub async fn stop_all(&mut self) {
        let codes: Vec<String> = self.running.keys().cloned().collect();
        for c in codes.iter().rev() {
            self.stop(c).await;
        }
    }

    pub fn is_running(&self, code: &str) -> bool {
        self.running.contains_key(code)
    }

    pub fn node(&self, code: &str) -> Result<&Node> {
        self.running
            .get(code)
            .map(|r| &r.node)
            .ok_or_else(|| Error::NotFound(format!("{code} is not running")))
    }

    pub fn running(&self, code: &str) -> Result<&RunningNode> {
        self.running
            .get(code)
            .ok_or_else(|| Error::NotFound(format!("{code} is not running")))
    }

    /// Starts the root, lets it register itself, then registers and starts every committee
    /// top-down, except those in `offline`, which are registered but not started.
    pub async fn bring_up(&mut self, offline: &[&str]) -> Result<()> {
        let root = self.root.clone();
        self.start(&root).await?;
        let root_spec = self.spec(&root)?.clone();
        if self.node(&root)?.roster().get(&root).is_none() {
            self.node(&root)?
                .register_root(&root_spec.name, Level::implied_by(&root))
                .await?;
        }
        let mut frontier = vec![root];
        while let Some(parent) = frontier.pop() {
            let children: Vec<Spec> = self
                .specs
                .iter()
                .filter(|s| s.parent.as_deref() == Some(parent.as_str()))
                .cloned()
                .collect();
            for child in children {
                let key = hex::encode(self.key(&child.code)?.verifying_key().as_bytes());
                let node = self.node(&parent)?.clone();
                if node.roster().get(&child.code).is_none() {
                    node.register_committee(&child.code, &child.name, &key)
                        .await?;
                }
                if offline.contains(&child.code.as_str()) {
                    continue;
                }
                self.start(&child.code).await?;
                let code = child.code.clone();
                self.wait_until(
                    &format!("{code} to receive its own registration"),
                    Duration::from_secs(20),
                    |f| {
                        f.node(&code)
                            .map(|n| n.roster().get(&code).is_some())
                            .unwrap_or(false)
                    },
                )
                .await?;
                frontier.push(child.code.clone());
            }
        }
        Ok(())
    }

    /// Polls `done` until it holds, or fails after `timeout` naming what it waited for.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Federation) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        while !done(self) {
            if start.elapsed() > timeout {
                return Err(Error::Transport(format!(
                    "timed out after {timeout:?} waiting for {what}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}
