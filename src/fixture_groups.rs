//! Several federations in one process, linked laterally: one [`Federation`] per province
//! (each the root of its own tree, with its own trust anchor, keys and TLS CA), and lateral
//! links between the provinces. The `yellow-river` demo and `tests/lateral.rs` build on it.
//!
//! A lateral pair is configured on both sides, as `[[peers]]` would be: the lower code dials
//! the higher one, with the higher one's CA as the only CA it trusts for that link; the higher
//! code accepts it with the lower one's CA. [`Lateral::bring_up`] therefore starts the
//! provinces from the highest code down, so that each dialer knows its peers' addresses.
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::fixture::{Federation, FixturePeer, Spec};
use crate::node::Node;
use crate::{Error, Result};

/// Three levels of one province with real codes: the province, one city, one county.
pub fn province(code: &str) -> Result<Vec<Spec>> {
    let (p, c, k) = match code {
        "620000" => (
            ("620000", "甘肃省政协"),
            ("620100", "兰州市政协"),
            ("620123", "榆中县政协"),
        ),
        "630000" => (
            ("630000", "青海省政协"),
            ("630100", "西宁市政协"),
            ("630121", "大通回族土族自治县政协"),
        ),
        "640000" => (
            ("640000", "宁夏回族自治区政协"),
            ("640100", "银川市政协"),
            ("640121", "永宁县政协"),
        ),
        "610000" => (
            ("610000", "陕西省政协"),
            ("610100", "西安市政协"),
            ("610122", "蓝田县政协"),
        ),
        other => {
            return Err(Error::NotFound(format!(
                "no fixture tree for {other}: use 610000, 620000, 630000 or 640000"
            )))
        }
    };
    Ok(vec![
        Spec::new(p.0, p.1, None),
        Spec::new(c.0, c.1, Some(p.0)),
        Spec::new(k.0, k.1, Some(c.0)),
    ])
}

pub struct Lateral {
    /// One federation per province, by its root's code.
    pub feds: BTreeMap<String, Federation>,
    /// Lateral links, each pair (lower code, higher code).
    links: BTreeSet<(String, String)>,
}

impl Lateral {
    /// Federations of `trees` (each a list of specs with one root), over mutual TLS with a CA
    /// per federation; nothing runs yet.
    pub fn new(trees: Vec<Vec<Spec>>) -> Result<Lateral> {
        Lateral::build(trees, true)
    }

    /// The same in plaintext.
    pub fn new_insecure(trees: Vec<Vec<Spec>>) -> Result<Lateral> {
        Lateral::build(trees, false)
    }

    fn build(trees: Vec<Vec<Spec>>, tls: bool) -> Result<Lateral> {
        let mut feds = BTreeMap::new();
        for specs in trees {
            let fed = if tls {
                Federation::new(specs)?
            } else {
                Federation::new_insecure(specs)?
            };
            feds.insert(fed.root().to_string(), fed);
        }
        Ok(Lateral {
            feds,
            links: BTreeSet::new(),
        })
    }

    /// Links two provinces laterally (both must be roots here); takes effect at their next
    /// start.
    pub fn link(&mut self, a: &str, b: &str) -> Result<()> {
        for c in [a, b] {
            if !self.feds.contains_key(c) {
                return Err(Error::NotFound(format!("{c} is not a root here")));
            }
        }
        let pair = if a < b { (a, b) } else { (b, a) };
        self.links.insert((pair.0.to_string(), pair.1.to_string()));
        Ok(())
    }

    /// Links every pair of the given provinces.
    pub fn link_all(&mut self, codes: &[&str]) -> Result<()> {
        for (i, a) in codes.iter().enumerate() {
            for b in &codes[i + 1..] {
                self.link(a, b)?;
            }
        }
        Ok(())
    }

    pub fn fed(&self, root: &str) -> Result<&Federation> {
        self.feds
            .get(root)
            .ok_or_else(|| Error::NotFound(format!("no federation rooted at {root}")))
    }

    pub fn fed_mut(&mut self, root: &str) -> Result<&mut Federation> {
        self.feds
            .get_mut(root)
            .ok_or_else(|| Error::NotFound(format!("no federation rooted at {root}")))
    }

    /// The federation `code` belongs to.
    pub fn fed_of(&self, code: &str) -> Result<&Federation> {
        self.feds
            .values()
            .find(|f| f.specs.iter().any(|s| s.code == code))
            .ok_or_else(|| Error::NotFound(format!("no committee {code} here")))
    }

    fn fed_of_mut(&mut self, code: &str) -> Result<&mut Federation> {
        self.feds
            .values_mut()
            .find(|f| f.specs.iter().any(|s| s.code == code))
            .ok_or_else(|| Error::NotFound(format!("no committee {code} here")))
    }

    pub fn node(&self, code: &str) -> Result<&Node> {
        self.fed_of(code)?.node(code)
    }

    /// A province's anchor (its root's public key), hex: what the others list in a charter.
    pub fn anchor_key(&self, root: &str) -> Result<String> {
        Ok(hex::encode(
            self.fed(root)?.key(root)?.verifying_key().as_bytes(),
        ))
    }

    /// Sets `root`'s `[[peers]]` from the links (the addresses of the peers it dials must be
    /// known: they are started first).
    fn configure(&mut self, root: &str) -> Result<()> {
        let mut peers = Vec::new();
        for (a, b) in &self.links {
            let other = match (a == root, b == root) {
                (true, _) => b,
                (_, true) => a,
                _ => continue,
            };
            let fed = self.fed(other)?;
            let address = if crate::sync::dials(root, other) {
                Some(fed.running(other).map(|r| r.federation_url()).map_err(|_| {
                    Error::Config(format!(
                        "start {other} before {root}: the lower code dials, so {root} needs {other}'s address"
                    ))
                })?)
            } else {
                None
            };
            peers.push(FixturePeer {
                code: other.clone(),
                address,
                ca_pem: fed.ca().map(|ca| ca.cert_pem().to_string()),
            });
        }
        self.fed_mut(root)?.peers.insert(root.to_string(), peers);
        Ok(())
    }

    /// Brings every federation up (registrations and all, as [`Federation::bring_up`]),
    /// the highest root code first, with the lateral links configured; `offline` committees
    /// are registered but not started.
    pub async fn bring_up(&mut self, offline: &[&str]) -> Result<()> {
        let roots: Vec<String> = self.feds.keys().rev().cloned().collect();
        for root in roots {
            self.configure(&root)?;
            self.fed_mut(&root)?.bring_up(offline).await?;
        }
        Ok(())
    }

    /// Starts a committee (again); a root gets its lateral links as configured now.
    pub async fn start(&mut self, code: &str) -> Result<()> {
        if self.feds.contains_key(code) {
            self.configure(code)?;
        }
        self.fed_of_mut(code)?.start(code).await
    }

    pub async fn stop(&mut self, code: &str) -> Result<()> {
        self.fed_of_mut(code)?.stop(code).await;
        Ok(())
    }

    pub async fn stop_all(&mut self) {
        for fed in self.feds.values_mut() {
            fed.stop_all().await;
        }
    }

    /// Polls `done` until it holds, or fails after `timeout` naming what it waited for.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Lateral) -> bool,
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
