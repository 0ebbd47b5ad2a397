//! `liandong init` and `liandong serve`.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ed25519_dalek::SigningKey;

use super::Cli;
use crate::clock::SystemClock;
use crate::config::{
    CommitteeSection, Config, MetricsSection, NodeSection, ParentSection, SyncSection, TlsSection,
    TrustSection,
};
use crate::domain::{CommitteeCode, Level};
use crate::node::NodeSettings;
use crate::server::{self, NodeOptions};
use crate::sync::SyncSettings;
use crate::tls::{NodeTls, Transport};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The folder to create (config, key, store).
    #[arg(long)]
    pub dir: PathBuf,
    /// This committee's 6-digit region code, e.g. 620123.
    #[arg(long)]
    pub code: String,
    /// Its name, e.g. 榆中县政协.
    #[arg(long)]
    pub name: String,
    /// The parent committee's code (omit at the root of the federation).
    #[arg(long, requires = "parent_address")]
    pub parent_code: Option<String>,
    /// The parent's Federation address, e.g. http://10.1.2.3:7400.
    #[arg(long, requires = "parent_code")]
    pub parent_address: Option<String>,
    /// The root committee's code (the trust anchor); defaults to this committee at the root.
    #[arg(long)]
    pub root_code: Option<String>,
    /// The root's public key (64 hex digits), as the root's `init` printed it.
    #[arg(long)]
    pub root_key: Option<String>,
    /// Where other nodes reach this node.
    #[arg(long, default_value = "0.0.0.0:7400")]
    pub listen: SocketAddr,
    /// Where the local CLI reaches this node.
    #[arg(long, default_value = "127.0.0.1:7401")]
    pub api_listen: SocketAddr,
    /// The store's engine: log (one append-only file with its index in memory;
    /// docs/architecture.md, "The log engine") or sled. Written to `[node] engine`.
    #[arg(long, default_value = "log")]
    pub engine: crate::store::EngineKind,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Override [node] listen.
    #[arg(long, env = "LIANDONG_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Override [node] api_listen.
    #[arg(long, env = "LIANDONG_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// Run the federation links in plaintext, without TLS: no peer is authenticated, and
    /// anyone who reaches the port can claim to be a child. For a test bench only.
    /// LIANDONG_INSECURE=1 (or true, yes, on) does the same.
    #[arg(long, env = "LIANDONG_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
    /// Override [metrics] listen ("" turns metrics off).
    #[arg(long, env = "LIANDONG_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

fn write_key(path: &Path, key: &SigningKey) -> Result<()> {
    std::fs::write(path, format!("{}\n", hex::encode(key.to_bytes())))
        .with_context(|| format!("writing the key to {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Reads a node's private key file.
pub fn read_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the node key {}: run `liandong init` first, or fix [node] key_file",
            path.display()
        )
    })?;
    let bytes = hex::decode(text.trim())
        .with_context(|| format!("{} is not a hex key file", path.display()))?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "{} holds {} bytes; a node key is 32",
            path.display(),
            bytes.len()
        )
    })?;
    Ok(SigningKey::from_bytes(&arr))
}

pub async fn init(args: &InitArgs, cli: &Cli) -> Result<()> {
    CommitteeCode::parse(&args.code).map_err(anyhow::Error::msg)?;
    let config_path = args.dir.join("liandong.toml");
    if config_path.exists() {
        bail!("{} already exists: this folder is already a node. Use another --dir, or delete it to start over", config_path.display());
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let key = crate::event::generate_key();
    let public = hex::encode(key.verifying_key().as_bytes());
    let is_root = args.parent_code.is_none();
    let (root_code, root_key) = if is_root {
        (
            args.root_code.clone().unwrap_or_else(|| args.code.clone()),
            public.clone(),
        )
    } else {
        let code = args
            .root_code
            .clone()
            .context("a non-root node needs --root-code (the federation's root committee)")?;
        let key = args
            .root_key
            .clone()
            .context("a non-root node needs --root-key (the root's public key, from its init)")?;
        (code, key)
    };
    if is_root && root_code != args.code {
        bail!(
            "without --parent-code this node is the root, so --root-code must be its own code {}",
            args.code
        );
    }
    let config = Config {
        peers: Vec::new(),
        committee: CommitteeSection {
            code: args.code.clone(),
            name: args.name.clone(),
        },
        node: NodeSection {
            listen: args.listen,
            api_listen: args.api_listen,
            engine: args.engine,
            ..NodeSection::default()
        },
        parent: match (&args.parent_code, &args.parent_address) {
            (Some(code), Some(address)) => Some(ParentSection {
                code: code.clone(),
                address: address.clone(),
            }),
            _ => None,
        },
        trust: TrustSection {
            root_code,
            root_public_key: root_key,
        },
        sync: SyncSection::default(),
        tls: TlsSection::default(),
        metrics: MetricsSection::default(),
    };
    config.validate().map_err(anyhow::Error::msg)?;
    write_key(&args.dir.join(&config.node.key_file), &key)?;
    let token_file = resolve(&args.dir, &config.node.api_token_file);
    crate::api::auth::ApiToken::generate().write_new(&token_file)?;
    let text = format!(
        "# liandong node configuration (see deploy/liandong.example.toml for every key)\n{}",
        toml::to_string_pretty(&config)?
    );
    std::fs::write(&config_path, text)?;
    if is_root {
        // The root writes its own registration, signed with the anchor key.
        // No link is started here, so no TLS material is needed yet.
        let opts = options(&config, &args.dir, key.clone(), Transport::Insecure)?;
        let store = crate::store::NodeStore::new(opts.open_engine()?);
        let node = crate::node::Node::open(opts.settings, key, store, Arc::new(SystemClock))?;
        node.register_root(&args.name, Level::implied_by(&args.code))
            .await?;
        node.close().await;
    }
    if cli.json {
        let out = serde_json::json!({
            "dir": args.dir,
            "config": config_path,
            "code": args.code,
            "name": args.name,
            "public_key": public,
            "api_token_file": token_file,
            "root": is_root,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "created {} for {} {}",
        args.dir.display(),
        args.code,
        args.name
    );
    println!("public key: {public}");
    if is_root {
        println!("this is the root of the federation: give every node --root-code {} --root-key {public}", args.code);
    } else if let Some(parent) = &args.parent_code {
        println!(
            "next, on the parent's node ({parent}): liandong committee register --code {} --name {} --key {public}",
            args.code, args.name
        );
    }
    println!(
        "its TLS certificate, from the federation's CA (made once with `liandong certs ca --dir <CA folder>`): liandong certs issue --ca <CA folder> --code {} --out {}",
        args.code,
        args.dir.display()
    );
    println!(
        "then start it: liandong serve --config {}",
        config_path.display()
    );
    Ok(())
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The transport of `serve`: mutual TLS with the files of [tls], checked to name this
/// committee; plaintext only when `insecure` (the `--insecure` flag), with a warning.
pub fn transport(cfg: &Config, base: &Path, insecure: bool) -> Result<Transport> {
    if insecure {
        // One log line (JSON too with --log-json), at WARN, which serve always shows.
        tracing::warn!(
            committee = %cfg.committee.code,
            port = cfg.node.listen.port(),
            "--insecure: the federation links of {} run in PLAINTEXT, without TLS. Peers are not authenticated: anyone who reaches port {} can claim to be a registered child and receive what that committee may see, and the traffic can be read and altered (event signatures still hold). Use this on a test bench only; for real nodes issue certificates with `liandong certs`.",
            cfg.committee.code,
            cfg.node.listen.port()
        );
        return Ok(Transport::Insecure);
    }
    let tls = NodeTls::load(
        &resolve(base, &cfg.tls.ca_cert),
        &resolve(base, &cfg.tls.cert),
        &resolve(base, &cfg.tls.key),
    )?;
    if tls.committee() != cfg.committee.code {
        bail!(
            "{} names committee {}, but this node is {}: issue this node's own with `liandong certs issue --ca <CA folder> --code {} --out {}`",
            resolve(base, &cfg.tls.cert).display(),
            tls.committee(),
            cfg.committee.code,
            cfg.committee.code,
            if base.as_os_str().is_empty() { Path::new(".") } else { base }.display()
        );
    }
    tracing::info!(committee = %tls.committee(), not_after = %tls.not_after(), "mutual TLS on federation links");
    let mut tls = tls;
    for p in &cfg.peers {
        // A lateral peer's certificate comes from its own federation's CA.
        let path = resolve(base, &p.ca_cert);
        let pem = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "[[peers]] {}: cannot read ca_cert {} (the CA certificate of {}'s federation, exchanged with its operators)",
                p.code,
                path.display(),
                p.code
            )
        })?;
        tls = tls.with_peer_ca(&p.code, &pem)?;
    }
    Ok(Transport::Tls(Arc::new(tls)))
}

/// The local API's credential: the token in [node] api_token_file, created when missing.
pub fn api_credential(cfg: &Config, base: &Path) -> Result<crate::api::auth::ApiCredential> {
    let path = resolve(base, &cfg.node.api_token_file);
    let token = crate::api::auth::ApiToken::load_or_create(&path)?;
    // Refusals tell clients where the token is: say it in full.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    Ok(crate::api::auth::ApiCredential {
        token,
        token_file: Some(path),
    })
}

/// Node options from a loaded config.
pub fn options(
    cfg: &Config,
    base: &Path,
    key: SigningKey,
    transport: Transport,
) -> Result<NodeOptions> {
    let root_key =
        crate::event::parse_public_key(&cfg.trust.root_public_key).map_err(anyhow::Error::msg)?;
    Ok(NodeOptions {
        settings: NodeSettings {
            code: cfg.committee.code.clone(),
            root_code: cfg.trust.root_code.clone(),
            root_key,
            max_clock_skew_ms: cfg.node.max_clock_skew_secs * 1000,
            max_group: 256,
        },
        key,
        store_dir: resolve(base, &cfg.node.data_dir),
        engine: cfg.node.engine,
        cache_bytes: cfg.node.cache_mb * 1024 * 1024,
        federation_listen: cfg.node.listen,
        api_listen: cfg.node.api_listen,
        parent: cfg
            .parent
            .as_ref()
            .map(|p| (p.code.clone(), p.address.clone())),
        sync: SyncSettings {
            batch_events: cfg.sync.batch_events,
            heartbeat: Duration::from_secs(cfg.sync.heartbeat_secs),
            max_message_bytes: cfg.sync.max_message_kib * 1024,
            ..SyncSettings::default()
        },
        transport,
        peers: cfg
            .peers
            .iter()
            .map(|p| crate::server::PeerOptions {
                code: p.code.clone(),
                address: p.address.clone(),
            })
            .collect(),
    })
}

pub async fn serve(args: &ServeArgs, cli: &Cli) -> Result<()> {
    // First of all, so that systemd's stop during a long start-up is a clean stop too.
    let mut signals = StopSignals::listen();
    let (mut cfg, base) = crate::config::Config::load(&cli.config)?;
    if let Some(l) = args.listen {
        cfg.node.listen = l;
    }
    if let Some(l) = args.api_listen {
        cfg.node.api_listen = l;
    }
    if let Some(l) = &args.metrics_listen {
        cfg.metrics.listen = l.clone();
    }
    let metrics_listen = cfg.metrics.address().map_err(anyhow::Error::msg)?;
    let key = read_key(&resolve(&base, &cfg.node.key_file))?;
    let transport = transport(&cfg, &base, args.insecure)?;
    let tls = transport.is_tls();
    let opts = options(&cfg, &base, key, transport)?;
    // Metrics are secondary to sync: a port in use is logged, and the node runs without them.
    let metrics = match metrics_listen {
        None => {
            tracing::info!("metrics are off ([metrics] listen is empty)");
            false
        }
        Some(addr) => match crate::telemetry::install_exporter(addr) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "running without metrics");
                false
            }
        },
    };
    let credential = api_credential(&cfg, &base)?;
    let token_file = credential.token_file.clone().unwrap_or_default();
    let running = server::start_authorized(opts, credential, Arc::new(SystemClock)).await?;
    if metrics {
        tokio::spawn(crate::telemetry::run_gauges(
            running.node.clone(),
            Duration::from_secs(1),
        ));
    }
    adopt_next_key(&running.node, &resolve(&base, &cfg.node.key_file))?;
    if let Some(parent) = &cfg.parent {
        tokio::spawn(super::progress::report_catch_up(
            running.node.clone(),
            parent.code.clone(),
        ));
    }
    println!(
        "{} {} serving: federation {} ({}), local API {}",
        cfg.committee.code,
        cfg.committee.name,
        running.federation_addr,
        if tls {
            "mutual TLS"
        } else {
            "PLAINTEXT, --insecure"
        },
        running.api_addr
    );
    println!(
        "console: http://{}/ (open it once with ?token=<the contents of {}>)",
        running.api_addr,
        token_file.display()
    );
    signals.wait().await;
    tracing::info!("shutting down: closing links and servers, syncing the store");
    running.stop().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// `liandong key new`: a new key beside the config, for the parent to rotate to.
pub fn new_key(cli: &Cli) -> Result<()> {
    let (cfg, base) = crate::config::Config::load(&cli.config)?;
    let next = next_key_path(&resolve(&base, &cfg.node.key_file));
    if next.exists() {
        bail!(
            "{} already exists: a rotation is already waiting. Give its public key to the parent, or delete the file to start over",
            next.display()
        );
    }
    let key = crate::event::generate_key();
    write_key(&next, &key)?;
    let public = hex::encode(key.verifying_key().as_bytes());
    if cli.json {
        println!(
            "{}",
            serde_json::json!({ "code": cfg.committee.code, "public_key": public, "file": next })
        );
    } else {
        println!("new key written to {}", next.display());
        println!("public key: {public}");
        match &cfg.parent {
            Some(p) => println!(
                "next, on the parent's node ({}): liandong committee rotate-key --code {} --key {public}\n(restart this node so it loads the new key; it switches when the rotation arrives)",
                p.code, cfg.committee.code
            ),
            None => println!("this is the root: its key is every node's trust anchor; rotating it means re-configuring [trust] everywhere"),
        }
    }
    Ok(())
}

fn next_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".next");
    key_file.with_file_name(name)
}

/// Loads a waiting `node.key.next`; once the roster has switched to it, makes it the key.
fn adopt_next_key(node: &crate::node::Node, key_file: &Path) -> Result<()> {
    let next = next_key_path(key_file);
    if !next.exists() {
        return Ok(());
    }
    let key = read_key(&next)?;
    let current = node.roster().get(node.code()).map(|m| m.key);
    if current == Some(key.verifying_key()) {
        let mut old = key_file.as_os_str().to_os_string();
        old.push(".old");
        std::fs::rename(key_file, &old)
            .with_context(|| format!("keeping the old key as {}", PathBuf::from(&old).display()))?;
        std::fs::rename(&next, key_file)
            .with_context(|| format!("installing the new key as {}", key_file.display()))?;
        tracing::info!(
            "the parent's rotation has arrived: {} is now the key",
            key_file.display()
        );
    } else {
        tracing::info!(
            "a new key is waiting for the parent's rotation ({})",
            next.display()
        );
    }
    node.add_key(key);
    Ok(())
}

/// SIGINT and SIGTERM, listened for from the moment this is made: a signal that arrives
/// while the node is still starting (opening a large store, binding ports) is kept and acted
/// on once it is up, instead of killing the process mid-start with the default action.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    listeners: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    pub(crate) fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listeners = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGINT/SIGTERM; falling back to Ctrl-C only");
                    None
                }
            };
            StopSignals { listeners }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Waits for the first SIGINT or SIGTERM (also one that came before this call).
    pub(crate) async fn wait(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.listeners {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for SIGINT or SIGTERM, listening from now on.
pub(crate) async fn wait_for_signal() {
    StopSignals::listen().wait().await
}
