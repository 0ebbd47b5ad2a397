//! The library's one error type. Every variant says what was wrong; the CLI adds what to do.
use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// An event or frame that could not be decoded or is structurally invalid.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// An event refused at ingest (signature, roster, authorization, scope); quarantined.
    #[error("refused: {0}")]
    Refused(#[from] crate::domain::Refusal),
    /// A request from a local client that cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// A record the request names does not exist here.
    #[error("not found: {0}")]
    NotFound(String),
    /// Configuration or key material is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The storage engine failed; the node cannot go on safely.
    #[error("storage: {0}")]
    Storage(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Shutdown,
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Error::Malformed(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Storage(format!("derived state encoding: {e}"))
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(e: tonic::transport::Error) -> Self {
        Error::Transport(e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Malformed(_) | Error::Invalid(_) | Error::Config(_) => {
                tonic::Status::invalid_argument(msg)
            }
            Error::Refused(_) => tonic::Status::permission_denied(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::Shutdown => tonic::Status::unavailable(msg),
            Error::Storage(_) | Error::Io(_) | Error::Transport(_) => tonic::Status::internal(msg),
        }
    }
}

/// An error and its causes on one line, skipping a cause whose text its parent already
/// contains (tonic and hyper repeat themselves: "tcp connect error: tcp connect error: ...").
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn chains_skip_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let wrapped = anyhow::Error::new(io)
            .context("tcp connect error")
            .context("cannot reach the local node");
        let text = super::chain(wrapped.as_ref());
        assert_eq!(
            text,
            "cannot reach the local node: tcp connect error: Connection refused"
        );
    }
}
