//! Transport security of node-to-node links: mutual TLS under a small private certificate
//! authority (CA) per federation, with node certificates that name their committee.
//!
//! - `liandong certs ca` makes the CA ([`Authority`]): `ca.crt` and `ca.key.pem`.
//! - `liandong certs issue` makes a node's certificate ([`NodeCert`]): `node.crt`,
//!   `node.key.pem`, and a copy of `ca.crt`, in the node's folder.
//! - A node certificate names its committee twice, and both must agree: the subject CN is the
//!   6-digit code, and the only DNS name in its subject alternative names is
//!   [`dns_name`]`(code)`, `c<code>.liandong`. It is valid for both ends of a link (server and
//!   client authentication), since a city is the server of its counties and the client of its
//!   province.
//! - The dialing child verifies the parent's certificate against the CA and for the DNS name
//!   of the parent code it is configured with ([`NodeTls::client_config`]); the parent requires
//!   a client certificate from the same CA ([`NodeTls::server_config`]), reads the committee
//!   from it ([`committee_of`]) and refuses a Hello that claims another committee
//!   (`sync::link::accept_child`).
//!
//! [`Transport`] is how a node is told which of the two it runs: mutual TLS, or plaintext,
//! which only an explicit `serve --insecure` (or `LIANDONG_INSECURE=1`) gives.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::domain::CommitteeCode;
use crate::{Error, Result};

/// The CA's certificate, in the CA's folder and copied into every node's folder.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA's private key: stays in the CA's folder (mode 0600), never on a node.
pub const CA_KEY_FILE: &str = "ca.key.pem";
/// A node's certificate.
pub const NODE_CERT_FILE: &str = "node.crt";
/// A node's TLS private key (mode 0600). Not `node.key`: that is the ed25519 signing key.
pub const NODE_KEY_FILE: &str = "node.key.pem";
/// The DNS suffix of node names; never resolved, only matched in certificates.
pub const DNS_SUFFIX: &str = "liandong";
/// Default validity of the CA, in days (20 years).
pub const CA_DAYS: u32 = 20 * 365;
/// Default validity of a node certificate, in days (5 years).
pub const NODE_DAYS: u32 = 5 * 365;

/// The DNS name a committee's certificate carries: `c620123.liandong`.
pub fn dns_name(code: &str) -> String {
    format!("c{code}.{DNS_SUFFIX}")
}

/// The committee code in a DNS name of the form [`dns_name`] gives, if it is one.
fn code_of_dns_name(name: &str) -> Option<&str> {
    let code = name.strip_prefix('c')?.strip_suffix(DNS_SUFFIX)?;
    let code = code.strip_suffix('.')?;
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn cert_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{what}: {e}"))
}

/// A random positive 16-byte serial number (RFC 5280: at most 20 bytes, unique per CA).
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams, days: u32) -> Result<()> {
    if days == 0 {
        return Err(Error::Invalid(
            "a certificate must be valid for at least 1 day".into(),
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    // An hour of slack for a node whose clock is a little behind the CA's.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

/// The private CA of a federation: its certificate and the key that signs node certificates.
pub struct Authority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    /// A new CA, named after the federation (e.g. "甘肃省政协 620000").
    pub fn generate(federation: &str, days: u32) -> Result<Authority> {
        let key = KeyPair::generate().map_err(|e| cert_error("generating the CA key", e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "liandong");
        dn.push(
            DnType::CommonName,
            format!("liandong federation CA {federation}").trim_end(),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(serial());
        validity(&mut params, days)?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| cert_error("signing the CA certificate", e))?;
        Ok(Authority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA from its certificate and key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| cert_error("the CA key", e))?;
        let block = pem_cert(cert_pem.as_bytes()).map_err(|e| {
            Error::Config(format!("the CA certificate is not a PEM certificate: {e}"))
        })?;
        let cert = block
            .parse_x509()
            .map_err(|e| Error::Config(format!("the CA certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(Error::Config(
                "the CA certificate is not a CA certificate (no basicConstraints CA:true)".into(),
            ));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::Config(
                "the CA key does not belong to the CA certificate".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| cert_error("reading the CA certificate", e))?;
        Ok(Authority {
            cert_pem: cert_pem.to_string(),
            issuer,
        })
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Reads a CA folder written by [`Authority::write`].
    pub fn load(dir: &Path) -> Result<Authority> {
        let cert = read_text(&dir.join(CA_CERT_FILE), &ca_hint(dir))?;
        let key = read_text(&dir.join(CA_KEY_FILE), &ca_hint(dir))?;
        Authority::from_pem(&cert, &key)
            .map_err(|e| Error::Config(format!("the CA in {}: {e}", dir.display())))
    }

    /// Writes `ca.crt` and `ca.key.pem` (mode 0600) into `dir`, creating it. Refuses to
    /// overwrite an existing CA: every certificate it issued would stop working.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        for f in [CA_CERT_FILE, CA_KEY_FILE] {
            let p = dir.join(f);
            if p.exists() {
                return Err(Error::Config(format!(
                    "{} already exists: this folder already holds a CA, and replacing it would invalidate every certificate it issued. Use it with `liandong certs issue --ca {}`, or choose another --dir",
                    p.display(),
                    dir.display()
                )));
            }
        }
        write_private(&dir.join(CA_KEY_FILE), &self.issuer.key().serialize_pem())?;
        write_public(&dir.join(CA_CERT_FILE), &self.cert_pem)
    }

    /// Issues the certificate of committee `code`, valid for `days`.
    pub fn issue(&self, code: &str, days: u32) -> Result<NodeCert> {
        CommitteeCode::parse(code).map_err(|e| Error::Invalid(format!("--code: {e}")))?;
        let key = KeyPair::generate().map_err(|e| cert_error("generating the node key", e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "liandong");
        dn.push(DnType::CommonName, code);
        params.distinguished_name = dn;
        let name = dns_name(code);
        params.subject_alt_names =
            vec![SanType::DnsName(name.clone().try_into().map_err(|e| {
                cert_error(&format!("the DNS name {name}"), e)
            })?)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial());
        validity(&mut params, days)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| cert_error("signing the node certificate", e))?;
        Ok(NodeCert {
            code: code.to_string(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.cert_pem.clone(),
        })
    }
}

fn ca_hint(dir: &Path) -> String {
    format!(
        "--ca must be the folder that `liandong certs ca --dir {}` created (make the CA with that command once per federation)",
        dir.display()
    )
}

/// A node's certificate and key, as issued, with the CA certificate to trust.
#[derive(Clone)]
pub struct NodeCert {
    pub code: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

impl NodeCert {
    /// Writes `node.crt`, `node.key.pem` (mode 0600) and `ca.crt` into `dir` (a node's folder,
    /// created if needed). Refuses to overwrite a node certificate unless `replace`.
    pub fn write(&self, dir: &Path, replace: bool) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        let cert = dir.join(NODE_CERT_FILE);
        let key = dir.join(NODE_KEY_FILE);
        let ca = dir.join(CA_CERT_FILE);
        if !replace {
            for p in [&cert, &key] {
                if p.exists() {
                    return Err(Error::Config(format!(
                        "{} already exists: pass --replace to issue a new certificate in its place",
                        p.display()
                    )));
                }
            }
        }
        write_private(&key, &self.key_pem)?;
        write_public(&cert, &self.cert_pem)?;
        write_public(&ca, &self.ca_pem)?;
        Ok(vec![cert, key, ca])
    }

    /// This certificate as a node's TLS material.
    pub fn to_node_tls(&self) -> Result<NodeTls> {
        NodeTls::from_pem(&self.ca_pem, &self.cert_pem, &self.key_pem)
    }
}

fn read_text(path: &Path, hint: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}; {hint}", path.display())))
}

fn write_public(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

/// Writes a private key readable by its owner only (created so from the start on Unix).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Config(format!("cannot restrict {}: {e}", path.display())))?;
    }
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

/// The first PEM block of a text, which must be a certificate; parse it with `parse_x509`.
fn pem_cert(pem: &[u8]) -> std::result::Result<Pem, String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| e.to_string())?;
    if p.label != "CERTIFICATE" {
        return Err(format!(
            "found a PEM block '{}', expected 'CERTIFICATE'",
            p.label
        ));
    }
    Ok(p)
}

/// The committee a node certificate names: the code in its `c<code>.liandong` DNS name,
/// which must also be its subject CN. Anything else (no such name, two of them, a CN that
/// disagrees) is an error that says what the certificate holds instead.
pub fn committee_of(der: &[u8]) -> std::result::Result<String, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    committee_of_parsed(&cert)
}

fn committee_of_parsed(cert: &X509Certificate<'_>) -> std::result::Result<String, String> {
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                dns.push(d.to_string());
            }
        }
    }
    let codes: Vec<&str> = dns.iter().filter_map(|d| code_of_dns_name(d)).collect();
    let code = match codes.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "its subject alternative names ({}) hold no committee name of the form c<code>.{DNS_SUFFIX}",
                if dns.is_empty() { "none".to_string() } else { dns.join(", ") }
            ))
        }
        many => {
            return Err(format!(
                "it names several committees ({}); a node certificate names one",
                many.join(", ")
            ))
        }
    };
    let cns: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if cns.as_slice() != [code] {
        return Err(format!(
            "its DNS name says committee {code} but its subject CN says {}",
            if cns.is_empty() {
                "nothing".to_string()
            } else {
                cns.join(", ")
            }
        ));
    }
    Ok(code.to_string())
}

/// A node's TLS material, read and checked: the CA to trust, its certificate and key, and the
/// committee its certificate names.
#[derive(Clone)]
pub struct NodeTls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    committee: String,
    not_after: String,
    /// Lateral peers (members of a lateral group, each the root of another federation with
    /// a CA of its own): code → that federation's CA certificate (PEM).
    peer_cas: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("committee", &self.committee)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Checks the three together: the certificate names a committee, was signed by the CA, is
    /// valid now, and the key is its key.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<NodeTls> {
        let ca_block = pem_cert(ca_pem.as_bytes())
            .map_err(|e| Error::Config(format!("the CA certificate: {e}")))?;
        let ca = ca_block
            .parse_x509()
            .map_err(|e| Error::Config(format!("the CA certificate: {e}")))?;
        let block = pem_cert(cert_pem.as_bytes())
            .map_err(|e| Error::Config(format!("the node certificate: {e}")))?;
        let cert = block
            .parse_x509()
            .map_err(|e| Error::Config(format!("the node certificate: {e}")))?;
        let committee = committee_of_parsed(&cert)
            .map_err(|e| Error::Config(format!("the node certificate: {e}")))?;
        cert.verify_signature(Some(ca.public_key())).map_err(|_| {
            Error::Config(format!(
                "the node certificate of {committee} was not issued by this CA (its issuer is '{}', the CA is '{}')",
                cert.issuer(),
                ca.subject()
            ))
        })?;
        let not_after = cert.validity().not_after.to_string();
        if !cert.validity().is_valid() {
            return Err(Error::Config(format!(
                "the node certificate of {committee} is not valid now (valid from {} to {not_after})",
                cert.validity().not_before
            )));
        }
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| Error::Config(format!("the node key is not a PEM private key: {e}")))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::Config(format!(
                "the node key does not belong to the node certificate of {committee}"
            )));
        }
        Ok(NodeTls {
            ca_pem: ca_pem.to_string(),
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            committee,
            not_after,
            peer_cas: Default::default(),
        })
    }

    /// Adds the CA of a lateral peer's federation: the peer's certificate must come from it
    /// (when it dials us, and when we dial it), and only from it.
    pub fn with_peer_ca(mut self, code: &str, ca_pem: &str) -> Result<NodeTls> {
        CommitteeCode::parse(code).map_err(|e| Error::Config(format!("[[peers]] code: {e}")))?;
        let block = pem_cert(ca_pem.as_bytes())
            .map_err(|e| Error::Config(format!("the CA certificate of peer {code}: {e}")))?;
        let ca = block
            .parse_x509()
            .map_err(|e| Error::Config(format!("the CA certificate of peer {code}: {e}")))?;
        if !ca.is_ca() {
            return Err(Error::Config(format!(
                "the CA certificate of peer {code} is not a CA certificate"
            )));
        }
        self.peer_cas.insert(code.to_string(), ca_pem.to_string());
        Ok(self)
    }

    /// Whether a peer's certificate (DER) was issued by the CA a link of that kind needs:
    /// this federation's own CA (`lateral` None: a child), or the CA configured for lateral
    /// peer `code` (`lateral` Some(code)). The TLS layer accepts a client certificate from any
    /// CA this node trusts; this decides whether it is the right one for the link.
    pub fn issued_by(&self, der: &[u8], lateral: Option<&str>) -> bool {
        let pem = match lateral {
            None => Some(&self.ca_pem),
            Some(code) => self.peer_cas.get(code),
        };
        let Some(pem) = pem else {
            return false;
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return false;
        };
        pem_cert(pem.as_bytes())
            .ok()
            .and_then(|b| {
                let ca = b.parse_x509().ok()?;
                Some(cert.verify_signature(Some(ca.public_key())).is_ok())
            })
            .unwrap_or(false)
    }

    /// Reads the three files; a missing one is named with the command that makes it.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<NodeTls> {
        let missing = |p: &Path, e: std::io::Error| {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            Error::Config(format!(
                "cannot read {}: {e}. Issue this node's certificate with `liandong certs issue --ca <CA folder> --code <this committee> --out {}` (the CA comes from `liandong certs ca --dir <CA folder>`), or fix [tls] in the config. Plaintext needs `liandong serve --insecure`",
                p.display(),
                dir.display()
            ))
        };
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| missing(p, e));
        let (ca_pem, cert_pem, key_pem) = (read(ca)?, read(cert)?, read(key)?);
        NodeTls::from_pem(&ca_pem, &cert_pem, &key_pem).map_err(|e| {
            Error::Config(format!(
                "{} / {} / {}: {e}",
                ca.display(),
                cert.display(),
                key.display()
            ))
        })
    }

    /// The committee this node's certificate names.
    pub fn committee(&self) -> &str {
        &self.committee
    }

    /// When this node's certificate expires.
    pub fn not_after(&self) -> &str {
        &self.not_after
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(&self.ca_pem)
    }

    /// The Federation server's side: present our certificate, require one from the CA (or
    /// from a lateral peer's CA; which one it must be is checked per link, see
    /// [`NodeTls::issuer_of`]).
    pub fn server_config(&self) -> ServerTlsConfig {
        let mut roots = self.ca_pem.clone();
        for pem in self.peer_cas.values() {
            roots.push('\n');
            roots.push_str(pem);
        }
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(roots))
            .client_auth_optional(false)
            .timeout(std::time::Duration::from_secs(10))
    }

    /// The dialing side: present our certificate, accept only a server certificate from the
    /// CA that is valid for `peer`'s DNS name — for a lateral peer, from its federation's CA.
    pub fn client_config(&self, peer: &str) -> ClientTlsConfig {
        let ca = match self.peer_cas.get(peer) {
            Some(pem) => Certificate::from_pem(pem),
            None => self.ca(),
        };
        ClientTlsConfig::new()
            .ca_certificate(ca)
            .identity(self.identity())
            .domain_name(dns_name(peer))
            .timeout(std::time::Duration::from_secs(10))
    }
}

/// How a node's links are carried.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Mutual TLS with the node's certificate (the default; the only mode in production).
    Tls(Arc<NodeTls>),
    /// Plaintext HTTP/2: no authentication of peers. Only with `serve --insecure`.
    Insecure,
}

impl Transport {
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The address to dial with the scheme this transport needs: the [parent] address may
    /// say http:// or https://; TLS or not is decided by the node, never by that scheme.
    pub fn dial_uri(&self, address: &str) -> String {
        let rest = address
            .strip_prefix("https://")
            .or_else(|| address.strip_prefix("http://"))
            .unwrap_or(address);
        match self {
            Transport::Tls(_) => format!("https://{rest}"),
            Transport::Insecure => format!("http://{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        pem_cert(pem.as_bytes()).expect("pem").contents
    }

    #[test]
    fn issued_certificates_name_their_committee() {
        let ca = Authority::generate("甘肃省政协 620000", 30).expect("ca");
        let node = ca.issue("620123", 30).expect("issue");
        assert_eq!(committee_of(&der_of(&node.cert_pem)), Ok("620123".into()));
        let block = pem_cert(node.cert_pem.as_bytes()).expect("pem");
        let cert = block.parse_x509().expect("x509");
        let ca_block = pem_cert(ca.cert_pem().as_bytes()).expect("pem");
        let ca_cert = ca_block.parse_x509().expect("x509");
        assert!(ca_cert.is_ca());
        assert!(!cert.is_ca());
        assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
        let eku = cert
            .extended_key_usage()
            .expect("eku parses")
            .expect("eku present");
        assert!(eku.value.server_auth && eku.value.client_auth);
        let tls = node.to_node_tls().expect("consistent");
        assert_eq!(tls.committee(), "620123");
        assert_eq!(dns_name("620123"), "c620123.liandong");
    }

    #[test]
    fn issuing_refuses_a_bad_code_and_zero_days() {
        let ca = Authority::generate("test", 30).expect("ca");
        let err = ca.issue("6201", 30).err().expect("refused").to_string();
        assert!(err.contains("--code"), "{err}");
        assert!(ca.issue("620123", 0).is_err());
        assert!(Authority::generate("test", 0).is_err());
    }

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(code_of_dns_name("c620123.liandong"), Some("620123"));
        for bad in [
            "620123.liandong",
            "c62012.liandong",
            "c6201234.liandong",
            "c620123.liandong.example",
            "c620123liandong",
            "cabcdef.liandong",
            "x.c620123.liandong",
        ] {
            assert_eq!(code_of_dns_name(bad), None, "{bad}");
        }
    }

    /// Certificates made by hand (not by `issue`) that name no committee, two committees,
    /// or disagree between CN and DNS name, are refused with what they hold instead.
    #[test]
    fn ambiguous_certificates_are_refused() {
        let make = |sans: Vec<&str>, cn: &str| {
            let key = KeyPair::generate().expect("key");
            let mut p =
                CertificateParams::new(sans.into_iter().map(String::from).collect::<Vec<_>>())
                    .expect("params");
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, cn);
            p.distinguished_name = dn;
            p.self_signed(&key).expect("cert").der().to_vec()
        };
        let e = committee_of(&make(vec!["example.org"], "620123")).expect_err("no code");
        assert!(e.contains("example.org"), "{e}");
        let e = committee_of(&make(
            vec!["c620123.liandong", "c620121.liandong"],
            "620123",
        ))
        .expect_err("two");
        assert!(e.contains("several"), "{e}");
        let e = committee_of(&make(vec!["c620123.liandong"], "620121")).expect_err("cn");
        assert!(e.contains("620123") && e.contains("620121"), "{e}");
        assert!(committee_of(b"not a certificate").is_err());
    }

    #[test]
    fn node_material_must_hang_together() {
        let ca = Authority::generate("a", 30).expect("ca");
        let other = Authority::generate("b", 30).expect("ca");
        let n = ca.issue("620100", 30).expect("issue");
        let m = ca.issue("620400", 30).expect("issue");
        // Another CA's certificate.
        let e = NodeTls::from_pem(other.cert_pem(), &n.cert_pem, &n.key_pem)
            .expect_err("foreign CA")
            .to_string();
        assert!(e.contains("not issued by this CA"), "{e}");
        // Another node's key.
        let e = NodeTls::from_pem(ca.cert_pem(), &n.cert_pem, &m.key_pem)
            .expect_err("wrong key")
            .to_string();
        assert!(e.contains("does not belong"), "{e}");
        // A key where the certificate should be.
        assert!(NodeTls::from_pem(ca.cert_pem(), &n.key_pem, &n.key_pem).is_err());
    }

    #[test]
    fn files_round_trip_keys_are_private_and_nothing_is_overwritten() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ca_dir = tmp.path().join("ca");
        let ca = Authority::generate("甘肃省政协", 30).expect("ca");
        ca.write(&ca_dir).expect("write");
        let err = ca.write(&ca_dir).expect_err("no overwrite").to_string();
        assert!(err.contains("already exists"), "{err}");

        let loaded = Authority::load(&ca_dir).expect("load");
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        let node_dir = tmp.path().join("620123");
        let issued = loaded.issue("620123", 30).expect("issue");
        issued.write(&node_dir, false).expect("write");
        assert!(issued.write(&node_dir, false).is_err(), "no overwrite");
        issued.write(&node_dir, true).expect("replace");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [ca_dir.join(CA_KEY_FILE), node_dir.join(NODE_KEY_FILE)] {
                let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", p.display());
            }
        }
        // Certificates from the loaded CA verify against the original CA certificate.
        let tls = NodeTls::load(
            &node_dir.join(CA_CERT_FILE),
            &node_dir.join(NODE_CERT_FILE),
            &node_dir.join(NODE_KEY_FILE),
        )
        .expect("load");
        assert_eq!(tls.committee(), "620123");
        NodeTls::from_pem(ca.cert_pem(), &issued.cert_pem, &issued.key_pem).expect("same CA");

        // A missing file is named, with the command that makes it.
        let err = NodeTls::load(
            &node_dir.join("nope.crt"),
            &node_dir.join(NODE_CERT_FILE),
            &node_dir.join(NODE_KEY_FILE),
        )
        .expect_err("missing")
        .to_string();
        assert!(
            err.contains("nope.crt") && err.contains("liandong certs issue"),
            "{err}"
        );
        let err = Authority::load(&tmp.path().join("nowhere"))
            .err()
            .expect("missing CA")
            .to_string();
        assert!(
            err.contains(CA_CERT_FILE) && err.contains("liandong certs ca"),
            "{err}"
        );
        // A CA key that is not the CA certificate's.
        let other = Authority::generate("x", 30).expect("ca");
        let key = std::fs::read_to_string(ca_dir.join(CA_KEY_FILE)).expect("key");
        assert!(Authority::from_pem(other.cert_pem(), &key).is_err());
    }

    #[test]
    fn the_dial_scheme_follows_the_transport() {
        let ca = Authority::generate("a", 30).expect("ca");
        let tls = Transport::Tls(Arc::new(
            ca.issue("620100", 30)
                .expect("issue")
                .to_node_tls()
                .expect("tls"),
        ));
        assert_eq!(
            tls.dial_uri("http://10.0.0.1:7400"),
            "https://10.0.0.1:7400"
        );
        assert_eq!(tls.dial_uri("https://h:7400"), "https://h:7400");
        assert_eq!(
            Transport::Insecure.dial_uri("https://h:7400"),
            "http://h:7400"
        );
    }
}
