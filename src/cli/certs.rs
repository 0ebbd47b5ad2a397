//! `liandong certs`: the federation's private CA and the nodes' TLS certificates.
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::Cli;
use crate::tls::{self, Authority};

#[derive(Subcommand, Debug)]
pub enum CertsCmd {
    /// Create the federation's CA (once, on the machine that will issue certificates):
    /// writes ca.crt and ca.key.pem (keep this key offline; it makes any node certificate).
    Ca {
        /// The folder to create for the CA.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name in the CA certificate, e.g. "甘肃省政协 620000".
        #[arg(long, default_value = "")]
        name: String,
        /// Days the CA is valid.
        #[arg(long, default_value_t = tls::CA_DAYS)]
        days: u32,
    },
    /// Issue a node's certificate for committee --code into its folder: node.crt,
    /// node.key.pem (mode 0600) and a copy of ca.crt, where `liandong init` expects them.
    Issue {
        /// The CA folder made by `liandong certs ca`.
        #[arg(long)]
        ca: PathBuf,
        /// The committee's 6-digit code; the certificate names it (CN and c<code>.liandong).
        #[arg(long)]
        code: String,
        /// The node's folder (the --dir of its `liandong init`).
        #[arg(long)]
        out: PathBuf,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = tls::NODE_DAYS)]
        days: u32,
        /// Replace an existing node certificate and key in --out.
        #[arg(long)]
        replace: bool,
    },
}

pub fn run(cmd: &CertsCmd, cli: &Cli) -> Result<()> {
    match cmd {
        CertsCmd::Ca { dir, name, days } => {
            let ca = Authority::generate(name, *days)?;
            ca.write(dir)?;
            if cli.json {
                let out = serde_json::json!({
                    "dir": dir,
                    "ca_cert": dir.join(tls::CA_CERT_FILE),
                    "ca_key": dir.join(tls::CA_KEY_FILE),
                    "days": days,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            println!(
                "created the federation CA in {}: {} (public) and {} (secret: keep it offline, it can make any node's certificate)",
                dir.display(),
                tls::CA_CERT_FILE,
                tls::CA_KEY_FILE
            );
            println!(
                "next, for each node: liandong certs issue --ca {} --code <code> --out <node folder>",
                dir.display()
            );
        }
        CertsCmd::Issue {
            ca,
            code,
            out,
            days,
            replace,
        } => {
            let authority = Authority::load(ca)?;
            let cert = authority.issue(code, *days)?;
            // Written only if it reads back as a consistent node identity.
            cert.to_node_tls()?;
            let files = cert.write(out, *replace)?;
            if cli.json {
                let j = serde_json::json!({
                    "code": code,
                    "dns_name": tls::dns_name(code),
                    "files": files,
                    "days": days,
                });
                println!("{}", serde_json::to_string_pretty(&j)?);
                return Ok(());
            }
            println!(
                "issued the certificate of {code} ({}), valid {days} days, into {}:",
                tls::dns_name(code),
                out.display()
            );
            for f in files {
                println!("  {}", f.display());
            }
            println!("these are the defaults of [tls] in the node's liandong.toml; if the node runs on another machine, copy the three files into its folder (node.key.pem is secret)");
        }
    }
    Ok(())
}
