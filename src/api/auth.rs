//! The local API's credential: one bearer token per node, in a file next to its config
//! (`[node] api_token_file`, default `api.token`, mode 0600), written by `liandong init`.
//!
//! Every `Committee` call must carry `authorization: Bearer <token>` ([`BearerAuth`], a tonic
//! interceptor); the web console takes the same token once in its URL and then keeps it in an
//! HttpOnly cookie (`console`). Comparison is constant-time, over SHA-256 digests, so neither
//! the token's bytes nor its length leak through timing. See docs/security.md.
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::{Error, Result};

/// Shortest and longest token accepted from a file (`init` writes 64 hex digits).
const MIN_LEN: usize = 16;
const MAX_LEN: usize = 512;

/// A bearer token. `Debug` does not show it, so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(…)")
    }
}

/// RFC 6750's token68 characters: what can travel in a header and a URL without escaping
/// (but for `+`, `/` and `=`, which a URL would need escaped: we refuse those too, so that
/// `?token=` works as pasted).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

impl ApiToken {
    /// 32 random bytes from the operating system, as 64 hex digits.
    pub fn generate() -> ApiToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        ApiToken(hex::encode(bytes))
    }

    /// Checks a token's text (surrounding whitespace removed).
    pub fn parse(text: &str) -> std::result::Result<ApiToken, String> {
        let t = text.trim();
        if t.len() < MIN_LEN || t.len() > MAX_LEN {
            return Err(format!(
                "a token is {MIN_LEN} to {MAX_LEN} characters; this one has {}",
                t.len()
            ));
        }
        if let Some(c) = t.chars().find(|c| !token_char(*c)) {
            return Err(format!(
                "a token is made of letters, digits and - . _ ~; this one has {c:?}"
            ));
        }
        Ok(ApiToken(t.to_string()))
    }

    /// The token's text, to send or to write down.
    pub fn secret(&self) -> &str {
        &self.0
    }

    fn digest(text: &str) -> [u8; 32] {
        Sha256::digest(text.as_bytes()).into()
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        Self::digest(&self.0).ct_eq(&Self::digest(presented)).into()
    }

    /// Writes a new token file, readable by its owner only. Fails if the file exists.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            Error::Config(format!(
                "cannot create the API token file {}: {e}",
                path.display()
            ))
        })?;
        f.write_all(format!("{}\n", self.0).as_bytes())?;
        f.sync_all()?;
        Ok(())
    }

    /// Reads a token file.
    pub fn read(path: &Path) -> Result<ApiToken> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the API token file {}: {e}. `liandong init` writes it; `liandong serve` \
                 creates it when it is missing; or fix [node] api_token_file",
                path.display()
            ))
        })?;
        ApiToken::parse(&text).map_err(|e| {
            Error::Config(format!(
                "{} is not an API token file: {e}. Delete it and restart `liandong serve` to get a new one",
                path.display()
            ))
        })
    }

    /// Reads the token file, or creates it with a new token when there is none (a node
    /// initialised before the local API had a credential). Warns when others may read it.
    pub fn load_or_create(path: &Path) -> Result<ApiToken> {
        if !path.exists() {
            let token = ApiToken::generate();
            token.write_new(path)?;
            tracing::info!(file = %path.display(), "created the local API token file");
            return Ok(token);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        file = %path.display(),
                        "the local API token file is readable by other users: chmod 600 it"
                    );
                }
            }
        }
        ApiToken::read(path)
    }
}

/// Who may call the local API and open the console: the token, and where it is kept (for the
/// refusal messages).
#[derive(Clone, Debug)]
pub struct ApiCredential {
    pub token: ApiToken,
    /// The token file; `None` for a token held only in memory (the demo, tests).
    pub token_file: Option<PathBuf>,
}

impl ApiCredential {
    /// A fresh token kept in memory only: the API is closed to everyone but the process that
    /// holds the [`crate::server::RunningNode`].
    pub fn ephemeral() -> ApiCredential {
        ApiCredential {
            token: ApiToken::generate(),
            token_file: None,
        }
    }

    /// Where a client finds the token, in words.
    pub fn where_to_find(&self) -> String {
        match &self.token_file {
            Some(p) => format!("the token is in {} on the node's machine", p.display()),
            None => "this node's token is held in memory only (a demo or test node; `liandong demo --keep-running` prints it)".into(),
        }
    }
}

/// The tonic interceptor in front of the `Committee` service.
#[derive(Clone)]
pub struct BearerAuth {
    credential: Arc<ApiCredential>,
}

impl BearerAuth {
    pub fn new(credential: ApiCredential) -> BearerAuth {
        BearerAuth {
            credential: Arc::new(credential),
        }
    }

    /// Checks an `authorization` header value.
    pub fn check(&self, header: Option<&str>) -> std::result::Result<(), Status> {
        let where_ = self.credential.where_to_find();
        let Some(value) = header else {
            return Err(Status::unauthenticated(format!(
                "the local API needs its token ({where_}): the CLI reads it through --config, \
                 or give it with --token / LIANDONG_TOKEN; other clients send `authorization: Bearer <token>`"
            )));
        };
        let presented = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or("");
        if presented.is_empty() {
            return Err(Status::unauthenticated(format!(
                "the authorization header must be `Bearer <token>` ({where_})"
            )));
        }
        if !self.credential.token.matches(presented) {
            return Err(Status::unauthenticated(format!(
                "wrong API token: {where_} (it changes only when that file is replaced)"
            )));
        }
        Ok(())
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, req: Request<()>) -> std::result::Result<Request<()>, Status> {
        let header = match req.metadata().get("authorization") {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                Status::unauthenticated("the authorization header is not plain ASCII")
            })?),
        };
        self.check(header)?;
        Ok(req)
    }
}

/// The client side: adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct AttachToken {
    value: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl AttachToken {
    /// `None`: send no credential (the node will answer with where its token is).
    pub fn new(token: Option<&ApiToken>) -> AttachToken {
        AttachToken {
            // A parsed token is made of header-safe characters, so this cannot fail; if it
            // did, sending nothing gets the node's explanation back.
            value: token.and_then(|t| format!("Bearer {}", t.secret()).parse().ok()),
        }
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut req: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(v) = &self.value {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = ApiToken::generate();
        let b = ApiToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.secret().len(), 64);
        assert_eq!(ApiToken::parse(a.secret()).expect("parses"), a);
        assert_eq!(
            ApiToken::parse(&format!("  {}\n", a.secret())).expect("trimmed"),
            a
        );
    }

    #[test]
    fn bad_token_text_is_refused_with_the_reason() {
        assert!(ApiToken::parse("short").unwrap_err().contains("16 to 512"));
        assert!(ApiToken::parse("0123456789abcdef 0123")
            .unwrap_err()
            .contains("' '"));
        assert!(ApiToken::parse("0123456789abcdef+0123").is_err());
    }

    #[test]
    fn matches_only_the_same_token() {
        let t = ApiToken::parse("0123456789abcdef0123").expect("parses");
        assert!(t.matches("0123456789abcdef0123"));
        assert!(!t.matches("0123456789abcdef012"));
        assert!(!t.matches("0123456789abcdef01234"));
        assert!(!t.matches(""));
    }

    #[test]
    fn the_interceptor_explains_every_refusal() {
        let cred = ApiCredential {
            token: ApiToken::parse("0123456789abcdef0123").expect("parses"),
            token_file: Some(PathBuf::from("/srv/liandong/api.token")),
        };
        let auth = BearerAuth::new(cred);
        let missing = auth.check(None).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("/srv/liandong/api.token"));
        let wrong = auth.check(Some("Bearer 0123456789abcdef9999")).unwrap_err();
        assert!(wrong.message().contains("wrong API token"), "{wrong}");
        assert!(wrong.message().contains("/srv/liandong/api.token"));
        let basic = auth.check(Some("Basic dXNlcjpwYXNz")).unwrap_err();
        assert!(basic.message().contains("Bearer <token>"), "{basic}");
        auth.check(Some("Bearer 0123456789abcdef0123"))
            .expect("the right token passes");
    }

    #[test]
    fn token_files_are_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("api.token");
        let created = ApiToken::load_or_create(&path).expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(ApiToken::load_or_create(&path).expect("read"), created);
        assert!(
            created.write_new(&path).is_err(),
            "never overwrites a token"
        );
        std::fs::write(&path, "not a token\n").expect("write");
        let err = ApiToken::read(&path).unwrap_err().to_string();
        assert!(err.contains("is not an API token file"), "{err}");
    }
}
