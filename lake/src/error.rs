//! What can go wrong talking to the lake's store, and whether trying again can
//! help: the caller must tell refused credentials (stop now, name the
//! setting) from a 503 or a reset connection (back off and retry).

/// `text` on one line, every run of whitespace one space: library errors
/// sometimes carry a multi-line response body.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A setting that cannot work; the message names it.
    #[error("{0}")]
    Setting(String),
    /// An answer that retrying will not change: credentials or permission
    /// refused, a missing bucket that may not be created, a store that
    /// ignores conditional writes.
    #[error("{0}")]
    Refused(String),
    /// An object-store request failed; `what` names the object.
    #[error("{what}: {}", one_line(&source.to_string()))]
    Request {
        what: String,
        #[source]
        source: object_store::Error,
    },
    /// The endpoint did not answer at all.
    #[error("{message}")]
    Unreachable {
        message: String,
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint answered a bucket request with a status we did not expect.
    #[error("{message}")]
    Status { message: String, status: u16 },
    /// A local lake's file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn request(what: impl Into<String>, source: object_store::Error) -> Self {
        StoreError::Request {
            what: what.into(),
            source,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the same request may succeed later: server errors, timeouts,
    /// resets and refused connections are; answers about the request itself
    /// (403, 404, 412, a bad path, a bad setting) are not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Setting(_) | StoreError::Refused(_) => false,
            StoreError::Request { source, .. } => is_transient_request(source),
            StoreError::Unreachable { .. } => true,
            StoreError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ResourceBusy
            ),
        }
    }
}

/// object_store maps the statuses that mean "this request will never work"
/// to their own variants; what is left in `Generic` is what its own retries
/// gave up on: 5xx, timeouts, connection errors.
pub fn is_transient_request(error: &object_store::Error) -> bool {
    use object_store::Error::*;
    !matches!(
        error,
        NotFound { .. }
            | InvalidPath { .. }
            | NotSupported { .. }
            | AlreadyExists { .. }
            | Precondition { .. }
            | NotModified { .. }
            | NotImplemented { .. }
            | PermissionDenied { .. }
            | Unauthenticated { .. }
            | UnknownConfigurationKey { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_server_errors_transient() {
        let denied = StoreError::request(
            "writing s3://lake/x",
            object_store::Error::PermissionDenied {
                path: "x".into(),
                source: "403 Forbidden".into(),
            },
        );
        assert!(!denied.is_transient());
        let unavailable = StoreError::request(
            "writing s3://lake/x",
            object_store::Error::Generic {
                store: "S3",
                source: "503 Slow Down".into(),
            },
        );
        assert!(unavailable.is_transient());
        assert_eq!(
            unavailable.to_string(),
            "writing s3://lake/x: Generic S3 error: 503 Slow Down"
        );
        assert!(!StoreError::Refused("no".into()).is_transient());
        let status = |status| StoreError::Status {
            message: String::new(),
            status,
        };
        assert!(status(503).is_transient() && status(429).is_transient());
        assert!(!status(400).is_transient());
    }
}
