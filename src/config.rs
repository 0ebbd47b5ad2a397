//! The node's configuration: one TOML file per node (written by `liandong init`), every key
//! documented below with its default, overridable by environment variables and flags.
//! Validation names the key that is wrong and says what to put there.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::CommitteeCode;
use crate::{Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub committee: CommitteeSection,
    #[serde(default)]
    pub node: NodeSection,
    /// Absent at the root of the federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentSection>,
    pub trust: TrustSection,
    #[serde(default)]
    pub sync: SyncSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Lateral peers (`[[peers]]`): the other members of this committee's lateral groups,
    /// each the root of its own federation. Only a federation's root has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerSection>,
}

/// One lateral peer. The lower code of a pair dials the other, so `address` is needed only
/// for peers whose code is higher than this committee's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    /// The peer's committee code, e.g. "640000".
    pub code: String,
    /// Its Federation address, e.g. "https://10.9.8.7:7400" (when this node dials it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The CA certificate of the peer's federation (PEM), relative to the config file.
    pub ca_cert: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeSection {
    /// This committee's 6-digit region code (GB/T 2260); "000000" is the national committee.
    pub code: String,
    /// Its name as people write it, e.g. "榆中县政协".
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// The store's folder, relative to the config file. Default "store".
    pub data_dir: PathBuf,
    /// The node's private key file, relative to the config file. Default "node.key".
    pub key_file: PathBuf,
    /// The local API's bearer token (also the console's), relative to the config file, mode
    /// 0600. Written by `liandong init`; `serve` creates it when missing. Default "api.token".
    pub api_token_file: PathBuf,
    /// Where other nodes reach this node's Federation service. Default "0.0.0.0:7400".
    pub listen: SocketAddr,
    /// Where local clients (the CLI) reach the Committee service. Default "127.0.0.1:7401".
    pub api_listen: SocketAddr,
    /// The storage engine of a **new** store: "sled" or "log" (an append-only file with its
    /// index in memory; docs/architecture.md, "The log engine"). A store that exists is
    /// opened with the engine that wrote it, whatever this says. Default "log".
    pub engine: crate::store::EngineKind,
    /// sled page cache in MiB (the log engine has none). Default 16.
    pub cache_mb: u64,
    /// Refuse events stamped further in the future than this. Default 300.
    pub max_clock_skew_secs: u64,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            data_dir: PathBuf::from("store"),
            key_file: PathBuf::from("node.key"),
            api_token_file: PathBuf::from("api.token"),
            listen: SocketAddr::from(([0, 0, 0, 0], 7400)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 7401)),
            engine: crate::store::EngineKind::default(),
            cache_mb: 16,
            max_clock_skew_secs: 300,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSection {
    /// The parent committee's code.
    pub code: String,
    /// Its Federation address, e.g. "https://10.1.2.3:7400". The scheme does not choose the
    /// transport: links use mutual TLS unless the node runs `serve --insecure`.
    pub address: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// The root committee of the federation (the trust anchor).
    pub root_code: String,
    /// The root's ed25519 public key, 64 hex digits.
    pub root_public_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Most events per batch on a link. Default 256.
    pub batch_events: usize,
    /// Seconds between heartbeats on an idle link. Default 5.
    pub heartbeat_secs: u64,
    /// Largest gRPC message a link accepts or sends, in KiB (every decoder has this limit; a
    /// larger message ends the session and is recorded in the quarantine). Batches stay under
    /// 1 MiB and an event under 128 KiB, so 2048 is the least that works. Default 16384.
    pub max_message_kib: usize,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            batch_events: 256,
            heartbeat_secs: 5,
            max_message_kib: crate::sync::link::MAX_FRAME_BYTES / 1024,
        }
    }
}

/// Mutual TLS between nodes. There is deliberately no key to turn it off: plaintext needs
/// `liandong serve --insecure` (or LIANDONG_INSECURE=1) on the command line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// The federation CA's certificate (PEM), relative to the config file. Default "ca.crt".
    pub ca_cert: PathBuf,
    /// This node's certificate (PEM), naming this committee. Default "node.crt".
    pub cert: PathBuf,
    /// This node's TLS private key (PEM, mode 0600). Default "node.key.pem".
    pub key: PathBuf,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            ca_cert: PathBuf::from(crate::tls::CA_CERT_FILE),
            cert: PathBuf::from(crate::tls::NODE_CERT_FILE),
            key: PathBuf::from(crate::tls::NODE_KEY_FILE),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Where Prometheus scrapes this node's metrics (plain HTTP, any path). Empty turns metrics
    /// off. Default "127.0.0.1:9400".
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: "127.0.0.1:9400".into(),
        }
    }
}

impl MetricsSection {
    /// The address to serve metrics on; None when they are off.
    pub fn address(&self) -> std::result::Result<Option<SocketAddr>, String> {
        let text = self.listen.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|e| {
            format!("[metrics] listen = \"{text}\": {e}; write an address like \"127.0.0.1:9400\", or \"\" to turn metrics off")
        })
    }
}

impl Config {
    /// Reads and validates a config file; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<(Config, PathBuf)> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read {}: {e}. Create one with `liandong init`, or point --config / LIANDONG_CONFIG at it",
                path.display()
            ))
        })?;
        let mut cfg: Config =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        cfg.apply_env()?;
        cfg.validate()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((cfg, base))
    }

    /// Environment overrides: LIANDONG_LISTEN, LIANDONG_API_LISTEN, LIANDONG_PARENT_ADDRESS,
    /// LIANDONG_DATA_DIR, LIANDONG_METRICS_LISTEN.
    pub fn apply_env(&mut self) -> Result<()> {
        if let Ok(v) = std::env::var("LIANDONG_LISTEN") {
            self.node.listen = v
                .parse()
                .map_err(|e| Error::Config(format!("LIANDONG_LISTEN='{v}': {e}")))?;
        }
        if let Ok(v) = std::env::var("LIANDONG_API_LISTEN") {
            self.node.api_listen = v
                .parse()
                .map_err(|e| Error::Config(format!("LIANDONG_API_LISTEN='{v}': {e}")))?;
        }
        if let Ok(v) = std::env::var("LIANDONG_PARENT_ADDRESS") {
            match &mut self.parent {
                Some(p) => p.address = v,
                None => {
                    return Err(Error::Config(
                        "LIANDONG_PARENT_ADDRESS is set, but the config has no [parent]".into(),
                    ))
                }
            }
        }
        if let Ok(v) = std::env::var("LIANDONG_DATA_DIR") {
            self.node.data_dir = PathBuf::from(v);
        }
        if let Ok(v) = std::env::var("LIANDONG_METRICS_LISTEN") {
            self.metrics.listen = v;
        }
        Ok(())
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        CommitteeCode::parse(&self.committee.code).map_err(|e| format!("[committee] code: {e}"))?;
        if self.committee.name.trim().is_empty() {
            return Err(
                "[committee] name is empty: write the committee's name, e.g. name = \"榆中县政协\""
                    .into(),
            );
        }
        CommitteeCode::parse(&self.trust.root_code)
            .map_err(|e| format!("[trust] root_code: {e}"))?;
        crate::event::parse_public_key(&self.trust.root_public_key).map_err(|e| {
            format!(
                "[trust] root_public_key: {e}; copy it from the root node's `liandong init` output"
            )
        })?;
        match &self.parent {
            None if self.committee.code != self.trust.root_code => {
                return Err(format!(
                    "[parent] is missing: {} is not the root ({}), so it needs its parent's code and address",
                    self.committee.code, self.trust.root_code
                ))
            }
            Some(_) if self.committee.code == self.trust.root_code => {
                return Err("[parent] is set on the root committee: remove it, the root has no parent".into())
            }
            Some(p) => {
                CommitteeCode::parse(&p.code).map_err(|e| format!("[parent] code: {e}"))?;
                if !(p.address.starts_with("http://") || p.address.starts_with("https://")) {
                    return Err(format!("[parent] address '{}' must start with https:// (e.g. https://10.1.2.3:7400; http:// is accepted too, and the link uses mutual TLS either way unless the node runs --insecure)", p.address));
                }
            }
            None => {}
        }
        if self.node.cache_mb == 0 || self.node.cache_mb > 64 * 1024 {
            return Err(format!(
                "[node] cache_mb = {} is out of range: use 1 to 65536 (default 16)",
                self.node.cache_mb
            ));
        }
        if self.sync.batch_events == 0 || self.sync.batch_events > 10_000 {
            return Err(format!(
                "[sync] batch_events = {} is out of range: use 1 to 10000 (default 256)",
                self.sync.batch_events
            ));
        }
        if !(2048..=262_144).contains(&self.sync.max_message_kib) {
            return Err(format!(
                "[sync] max_message_kib = {} is out of range: use 2048 to 262144 (default 16384); a batch needs up to 1 MiB and its framing",
                self.sync.max_message_kib
            ));
        }
        if self.sync.heartbeat_secs == 0 {
            return Err("[sync] heartbeat_secs must be at least 1 (default 5)".into());
        }
        self.metrics.address()?;
        if !self.peers.is_empty() && self.committee.code != self.trust.root_code {
            return Err(format!(
                "[[peers]] is set on {}, which is not the root of its federation ({}): lateral links join the roots of federations",
                self.committee.code, self.trust.root_code
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.peers {
            CommitteeCode::parse(&p.code).map_err(|e| format!("[[peers]] code: {e}"))?;
            if p.code == self.committee.code || !seen.insert(p.code.clone()) {
                return Err(format!(
                    "[[peers]] {} is this committee itself or listed twice",
                    p.code
                ));
            }
            let dials = crate::sync::dials(&self.committee.code, &p.code);
            match &p.address {
                None if dials => {
                    return Err(format!(
                        "[[peers]] {}: address is missing; the lower code of a pair dials, so this node ({}) dials {} (e.g. address = \"https://10.9.8.7:7400\")",
                        p.code, self.committee.code, p.code
                    ))
                }
                Some(a) if !(a.starts_with("http://") || a.starts_with("https://")) => {
                    return Err(format!(
                        "[[peers]] {} address '{a}' must start with https://",
                        p.code
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        r#"
[committee]
code = "620123"
name = "榆中县政协"
[parent]
code = "620100"
address = "http://127.0.0.1:7400"
[trust]
root_code = "620000"
root_public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
"#
        .to_string()
    }

    #[test]
    fn a_minimal_config_gets_documented_defaults() {
        let cfg: Config = toml::from_str(&sample()).expect("parses");
        cfg.validate().expect("valid");
        assert_eq!(cfg.node.cache_mb, 16);
        assert_eq!(cfg.node.api_listen.to_string(), "127.0.0.1:7401");
        assert_eq!(cfg.node.api_token_file, PathBuf::from("api.token"));
        assert_eq!(cfg.tls.ca_cert, PathBuf::from("ca.crt"));
        assert_eq!(cfg.tls.cert, PathBuf::from("node.crt"));
        assert_eq!(cfg.tls.key, PathBuf::from("node.key.pem"));
        // Plaintext is not a config key: only `serve --insecure` gives it.
        let off = sample() + "[tls]\ninsecure = true\n";
        assert!(toml::from_str::<Config>(&off).is_err());
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let bad = sample().replace("\"620100\"", "\"6201\"");
        let err = toml::from_str::<Config>(&bad)
            .expect("parses")
            .validate()
            .expect_err("invalid");
        assert!(
            err.contains("[parent] code") && err.contains("6-digit"),
            "{err}"
        );
        let typo = sample().replace("[trust]", "[trust]\nroot_kee = 1");
        assert!(
            toml::from_str::<Config>(&typo).is_err(),
            "unknown keys are refused"
        );
        let no_parent = sample().replace(
            "[parent]\ncode = \"620100\"\naddress = \"http://127.0.0.1:7400\"\n",
            "",
        );
        let err = toml::from_str::<Config>(&no_parent)
            .expect("parses")
            .validate()
            .expect_err("invalid");
        assert!(err.contains("[parent] is missing"), "{err}");
        let tiny = format!("{}[sync]\nmax_message_kib = 64\n", sample());
        let err = toml::from_str::<Config>(&tiny)
            .expect("parses")
            .validate()
            .expect_err("invalid");
        assert!(err.contains("[sync] max_message_kib = 64"), "{err}");
        assert!(err.contains("2048"), "{err}");
    }

    #[test]
    fn the_engine_defaults_to_log_and_a_wrong_name_is_refused_with_the_choices() {
        let cfg: Config = toml::from_str(&sample()).expect("parses");
        assert_eq!(cfg.node.engine, crate::store::EngineKind::Log);
        let sled: Config =
            toml::from_str(&format!("{}[node]\nengine = \"sled\"\n", sample())).expect("parses");
        assert_eq!(sled.node.engine, crate::store::EngineKind::Sled);
        let err = toml::from_str::<Config>(&format!("{}[node]\nengine = \"rocks\"\n", sample()))
            .expect_err("unknown engine")
            .to_string();
        assert!(
            err.contains("rocks") && err.contains("log") && err.contains("sled"),
            "{err}"
        );
    }

    #[test]
    fn metrics_listen_defaults_on_loopback_and_empty_turns_it_off() {
        let cfg: Config = toml::from_str(&sample()).expect("parses");
        assert_eq!(
            cfg.metrics.address().expect("valid").map(|a| a.to_string()),
            Some("127.0.0.1:9400".to_string())
        );
        let off: Config =
            toml::from_str(&format!("{}[metrics]\nlisten = \"\"\n", sample())).expect("parses");
        assert_eq!(off.metrics.address().expect("valid"), None);
        let bad: Config =
            toml::from_str(&format!("{}[metrics]\nlisten = \"9400\"\n", sample())).expect("parses");
        let err = bad.validate().expect_err("invalid");
        assert!(err.contains("[metrics] listen"), "{err}");
    }

    #[test]
    fn lateral_peers_are_for_roots_and_the_lower_code_dials() {
        let root = r#"
[committee]
code = "620000"
name = "甘肃省政协"
[trust]
root_code = "620000"
root_public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
"#;
        let with = |peers: &str| format!("{root}{peers}");
        let ok = with(
            "[[peers]]\ncode = \"640000\"\naddress = \"https://10.64.0.1:7400\"\nca_cert = \"peers/640000-ca.crt\"\n[[peers]]\ncode = \"610000\"\nca_cert = \"peers/610000-ca.crt\"\n",
        );
        let cfg: Config = toml::from_str(&ok).expect("parses");
        cfg.validate().expect("valid");
        assert_eq!(cfg.peers.len(), 2);
        // Gansu dials Ningxia (620000 < 640000): the address is needed.
        let no_address = with("[[peers]]\ncode = \"640000\"\nca_cert = \"x.crt\"\n");
        let err = toml::from_str::<Config>(&no_address)
            .expect("parses")
            .validate()
            .expect_err("invalid");
        assert!(err.contains("address is missing"), "{err}");
        // Not on a county.
        let county = sample()
            + "[[peers]]\ncode = \"640000\"\naddress = \"https://h:1\"\nca_cert = \"x.crt\"\n";
        let err = toml::from_str::<Config>(&county)
            .expect("parses")
            .validate()
            .expect_err("invalid");
        assert!(err.contains("not the root"), "{err}");
        // Itself, or twice.
        let twice = with("[[peers]]\ncode = \"610000\"\nca_cert = \"x.crt\"\n[[peers]]\ncode = \"610000\"\nca_cert = \"x.crt\"\n");
        assert!(toml::from_str::<Config>(&twice)
            .expect("parses")
            .validate()
            .is_err());
    }
}
