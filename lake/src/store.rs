//! Opening the lake: `LAKE_URL` plus the `AWS_*` settings become an object
//! store rooted at the lake, for `s3://bucket[/prefix]` and local directories.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::aws::AmazonS3ConfigKey;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore};

use crate::error::StoreError;

/// The lake settings every binary shares (docs/DESIGN.md §2).
#[derive(clap::Args, Debug, Clone)]
pub struct LakeArgs {
    /// Root of the lake: s3://bucket[/prefix], file:///abs/path or a local path.
    #[arg(long, env = "LAKE_URL", default_value = "s3://lake")]
    pub lake_url: String,
    /// S3 endpoint such as http://localhost:9000 (MinIO); unset for AWS. Path-style addressing.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// S3 access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    /// S3 secret access key (never printed).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    /// S3 region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub aws_region: String,
    /// Session token of temporary credentials (never printed).
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,
    /// How long one S3 request may take before the client gives up on it (and
    /// retries it, unless it is a conditional write).
    #[arg(long, env = "AWS_TIMEOUT", default_value = "60s", value_parser = crate::config::parse_duration)]
    pub aws_timeout: Duration,
    /// How long connecting to the S3 endpoint may take.
    #[arg(long, env = "AWS_CONNECT_TIMEOUT", default_value = "5s", value_parser = crate::config::parse_duration)]
    pub aws_connect_timeout: Duration,
    /// The S3 client's other `AWS_*` options (web identity, container
    /// credentials, a proxy, ...), read from the environment at start.
    #[arg(skip)]
    pub s3_options: Vec<(AmazonS3ConfigKey, String)>,
}

impl Default for LakeArgs {
    fn default() -> Self {
        LakeArgs {
            lake_url: "s3://lake".into(),
            aws_endpoint_url: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_region: "us-east-1".into(),
            aws_session_token: None,
            aws_timeout: Duration::from_secs(60),
            aws_connect_timeout: Duration::from_secs(5),
            s3_options: Vec::new(),
        }
    }
}

impl crate::config::FromEnvironment for LakeArgs {
    /// Every `AWS_*` variable the S3 client knows, as `AmazonS3Builder::from_env`
    /// would take it; the settings above are applied after them and win,
    /// and the two timeouts, read above, are not passed on again.
    fn read_environment(&mut self, vars: &[(String, String)]) {
        self.s3_options = vars
            .iter()
            .filter(|(name, _)| name.starts_with("AWS_"))
            .filter_map(|(name, value)| {
                let key = name.to_ascii_lowercase().parse().ok()?;
                Some((key, value.clone()))
            })
            .filter(|(key, _)| {
                !matches!(
                    key,
                    AmazonS3ConfigKey::Client(
                        ClientConfigKey::Timeout | ClientConfigKey::ConnectTimeout
                    )
                )
            })
            .collect();
    }
}

impl LakeArgs {
    /// Values that must never be printed, for [`crate::config::redact`].
    pub fn secret_values(&self) -> Vec<String> {
        self.aws_secret_access_key
            .iter()
            .chain(&self.aws_session_token)
            .cloned()
            .collect()
    }

    /// The settings as they may be logged: secrets masked.
    pub fn masked(&self) -> String {
        format!(
            "lake_url={} aws_endpoint_url={} aws_access_key_id={} aws_secret_access_key={} aws_region={}",
            self.lake_url,
            self.aws_endpoint_url.as_deref().unwrap_or("(aws)"),
            self.aws_access_key_id.as_deref().map(mask).unwrap_or_else(|| "(unset)".into()),
            if self.aws_secret_access_key.is_some() { "****" } else { "(unset)" },
            self.aws_region,
        )
    }
}

/// Shows enough of a key id to tell two apart, never the whole of it.
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}****")
}

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Local { root: PathBuf },
}

impl Location {
    /// Parses `LAKE_URL`; the error names the setting.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let url = url.trim();
        let setting = |message: String| Err(StoreError::Setting(message));
        if url.is_empty() {
            return setting("LAKE_URL is empty".into());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !is_bucket_name(bucket) {
                return setting(format!(
                    "LAKE_URL {url:?}: {bucket:?} is not a valid bucket name (3-63 of a-z 0-9 . -)"
                ));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return setting(format!(
                    "LAKE_URL {url:?}: a file:// URL needs an absolute path (file:///abs/path)"
                ));
            }
            return Ok(Location::Local {
                root: PathBuf::from(rest),
            });
        }
        if url.contains("://") {
            return setting(format!(
                "LAKE_URL {url:?}: use s3://bucket[/prefix], file:///abs/path or a local path"
            ));
        }
        let path = PathBuf::from(url);
        let root = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| {
                    StoreError::io(
                        format!("LAKE_URL {url:?}: cannot resolve a relative path"),
                        e,
                    )
                })?
                .join(path)
        };
        Ok(Location::Local { root })
    }
}

fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// An opened lake: an object store whose keys are relative to the lake root.
#[derive(Debug, Clone)]
pub struct Lake {
    pub store: Arc<dyn ObjectStore>,
    pub location: Location,
    pub args: LakeArgs,
}

impl Lake {
    /// Builds the store; makes no request. Errors name the setting.
    pub fn open(args: &LakeArgs) -> Result<Lake, StoreError> {
        let location = Location::parse(&args.lake_url)?;
        let store: Arc<dyn ObjectStore> =
            match &location {
                Location::Local { root } => {
                    std::fs::create_dir_all(root).map_err(|e| {
                        StoreError::io(
                            format!(
                                "LAKE_URL {}: cannot create directory {}",
                                args.lake_url,
                                root.display()
                            ),
                            e,
                        )
                    })?;
                    Arc::new(LocalFileSystem::new_with_prefix(root).map_err(|e| {
                        StoreError::request(format!("LAKE_URL {}", args.lake_url), e)
                    })?)
                }
                Location::S3 { bucket, prefix } => {
                    let s3 = s3_builder(args, bucket)?.build().map_err(|e| {
                        StoreError::Setting(format!("LAKE_URL {}: {e}", args.lake_url))
                    })?;
                    if prefix.is_empty() {
                        Arc::new(s3)
                    } else {
                        Arc::new(PrefixStore::new(s3, prefix.as_str()))
                    }
                }
            };
        Ok(Lake {
            store,
            location,
            args: args.clone(),
        })
    }

    /// The store of the whole filesystem or bucket, and the URL of the lake
    /// root in it: what a library that addresses tables by URL (Delta) is
    /// given, since it adds the URL's path to the store itself.
    pub fn root_store(&self) -> Result<(Arc<dyn ObjectStore>, String), StoreError> {
        match &self.location {
            Location::Local { root } => Ok((
                Arc::new(LocalFileSystem::new()),
                format!(
                    "file://{}",
                    std::path::absolute(root).unwrap_or(root.clone()).display()
                ),
            )),
            Location::S3 { bucket, prefix } => {
                let s3 = s3_builder(&self.args, bucket)?.build().map_err(|e| {
                    StoreError::Setting(format!("LAKE_URL {}: {e}", self.args.lake_url))
                })?;
                let root = format!("s3://{bucket}/{prefix}");
                Ok((Arc::new(s3), root.trim_end_matches('/').to_string()))
            }
        }
    }

    /// A lake-relative key as an object-store path.
    pub fn path(key: &str) -> Path {
        Path::from(key)
    }

    /// The names of the folders directly under `prefix`, sorted.
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&Lake::path(prefix)))
            .await
            .map_err(|e| StoreError::request(format!("listing {}/", self.url_of(prefix)), e))?;
        let mut folders: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|dir| dir.filename().map(String::from))
            .collect();
        folders.sort();
        Ok(folders)
    }

    /// A lake-relative key as DuckDB or a person would address it.
    pub fn url_of(&self, key: &str) -> String {
        match &self.location {
            Location::Local { root } => root.join(key).display().to_string(),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/{key}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/{key}"),
        }
    }

    /// Checks that the bucket answers and, if it is missing and `create` is
    /// set (`CREATE_BUCKET`), creates it. Local lakes need nothing. The error
    /// is one line that names the endpoint or bucket and the setting to change.
    pub async fn ensure_bucket(&self, create: bool) -> Result<(), StoreError> {
        let Location::S3 { bucket, .. } = &self.location else {
            return Ok(());
        };
        if self.bucket_exists().await? {
            return Ok(());
        }
        let endpoint = self.endpoint();
        if !create {
            return Err(StoreError::Refused(format!(
                "bucket {bucket:?} (LAKE_URL {}) does not exist at {endpoint}, and CREATE_BUCKET=false forbids creating it",
                self.args.lake_url
            )));
        }
        if self.args.aws_access_key_id.is_none() {
            return Err(StoreError::Setting(format!(
                "bucket {bucket:?} does not exist at {endpoint} and AWS_ACCESS_KEY_ID is not set to create it"
            )));
        }
        // us-east-1 is the one region S3 wants no location constraint for.
        let body = match self.args.aws_region.as_str() {
            "us-east-1" => String::new(),
            region => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ),
        };
        let response = self.bucket_request(reqwest::Method::PUT, body).await?;
        match response.status().as_u16() {
            200..=299 => {
                tracing::info!(bucket, endpoint, "created bucket");
                Ok(())
            }
            // Someone else created it in the meantime, which is fine.
            409 => Ok(()),
            403 => Err(StoreError::Refused(format!(
                "S3 endpoint {endpoint} refused to create bucket {bucket:?} for AWS_ACCESS_KEY_ID {} \
                 (HTTP 403): create it yourself, or use keys that may",
                self.key_id_shown()
            ))),
            status => Err(StoreError::Status {
                message: format!(
                    "cannot create bucket {bucket:?} at {endpoint}: HTTP {}",
                    response.status()
                ),
                status,
            }),
        }
    }

    /// Whether the lake's bucket exists (a signed HEAD of the bucket); local
    /// lakes always do. Anything but "yes" or "no" is a one-line error that
    /// names the endpoint and the setting to check.
    pub async fn bucket_exists(&self) -> Result<bool, StoreError> {
        let Location::S3 { bucket, .. } = &self.location else {
            return Ok(true);
        };
        let response = self
            .bucket_request(reqwest::Method::HEAD, String::new())
            .await?;
        let endpoint = self.endpoint();
        let region = response
            .headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .filter(|r| *r != self.args.aws_region);
        match (response.status().as_u16(), region) {
            (200..=299, _) => Ok(true),
            (404, _) => Ok(false),
            (301 | 400, Some(region)) => Err(StoreError::Setting(format!(
                "bucket {bucket:?} is in region {region}, not AWS_REGION={}",
                self.args.aws_region
            ))),
            // A HEAD has no body, so InvalidAccessKeyId, SignatureDoesNotMatch
            // and AccessDenied all look the same: name both settings.
            (401 | 403, _) => Err(StoreError::Refused(format!(
                "S3 endpoint {endpoint} refused the credentials for bucket {bucket:?} (HTTP {}): \
                 check AWS_ACCESS_KEY_ID ({}) and AWS_SECRET_ACCESS_KEY",
                response.status(),
                self.key_id_shown()
            ))),
            (status, _) => Err(StoreError::Status {
                message: format!(
                    "S3 endpoint {endpoint} (AWS_ENDPOINT_URL) answered HTTP {} for bucket {bucket:?}",
                    response.status()
                ),
                status,
            }),
        }
    }

    /// A request on the bucket itself, signed in the `Authorization` header
    /// as object_store signs (some servers, e.g. moto with authentication
    /// on, do not accept presigned URLs), with a short timeout.
    async fn bucket_request(
        &self,
        method: reqwest::Method,
        body: String,
    ) -> Result<reqwest::Response, StoreError> {
        use object_store::aws::{AwsAuthorizer, AwsCredential};
        use object_store::client::{HttpRequest, HttpRequestBody};
        let Location::S3 { bucket, .. } = &self.location else {
            return Err(StoreError::Setting("not an S3 lake".into()));
        };
        let endpoint = self.endpoint();
        let url = format!("{}/{bucket}", endpoint.trim_end_matches('/'));
        let mut request = HttpRequest::new(HttpRequestBody::from(body.clone()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = url
            .parse()
            .map_err(|e| StoreError::Setting(format!("AWS_ENDPOINT_URL {endpoint:?}: {e}")))?;
        if let (Some(key_id), Some(secret_key)) = (
            &self.args.aws_access_key_id,
            &self.args.aws_secret_access_key,
        ) {
            let credential = AwsCredential {
                key_id: key_id.clone(),
                secret_key: secret_key.clone(),
                token: self.args.aws_session_token.clone(),
            };
            // `authorize` panics on a token that is no header value: refuse it first.
            if let Some(token) = &credential.token {
                reqwest::header::HeaderValue::from_str(token).map_err(|_| {
                    StoreError::Setting("AWS_SESSION_TOKEN is not a valid header value".into())
                })?;
            }
            AwsAuthorizer::new(&credential, "s3", &self.args.aws_region)
                .authorize(&mut request, None);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| StoreError::Setting(format!("HTTP client: {e}")))?;
        let operation = match method {
            reqwest::Method::HEAD => "head_bucket",
            _ => "create_bucket",
        };
        let sent = client
            .request(method, &url)
            .headers(request.headers().clone())
            // Some servers refuse a PUT without an explicit length, even an empty one.
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await;
        crate::metrics::metrics()
            .count_s3_request(operation, sent.as_ref().ok().map(|r| r.status().as_u16()));
        sent.map_err(|e| StoreError::Unreachable {
            message: format!(
                "S3 endpoint {endpoint} (AWS_ENDPOINT_URL) is unreachable: {}",
                root_cause(&e)
            ),
            source: e,
        })
    }

    /// `AWS_ACCESS_KEY_ID` as errors may show it: masked, or "unset".
    fn key_id_shown(&self) -> String {
        self.args
            .aws_access_key_id
            .as_deref()
            .map(mask)
            .unwrap_or_else(|| "unset".into())
    }

    /// Proves that a local lake's directory takes writes: root ignores file
    /// modes, but not a read-only mount or a path in /proc. S3 lakes prove
    /// that in [`Lake::check_conditional_writes`].
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let Location::Local { root } = &self.location else {
            return Ok(());
        };
        let dir = root.join(crate::layout::PROBES);
        let probe = dir.join(format!("write-{}.probe", std::process::id()));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&probe, b"{}"))
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| {
                StoreError::io(
                    format!(
                        "LAKE_URL {}: cannot write {}",
                        self.args.lake_url,
                        probe.display()
                    ),
                    e,
                )
            })
    }

    /// Proves that the store refuses a conditional write that must fail, as
    /// the checkpoint protocol relies on; some S3-compatible servers ignore
    /// If-None-Match / If-Match. Local lakes use a file lock instead.
    pub async fn check_conditional_writes(&self) -> Result<(), StoreError> {
        use object_store::{ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
        if matches!(self.location, Location::Local { .. }) {
            return Ok(());
        }
        let key = format!(
            "{}/conditional-write-{}-{}.json",
            crate::layout::PROBES,
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        );
        let path = Lake::path(&key);
        let endpoint = self.endpoint();
        let put = |mode| {
            self.store.put_opts(
                &path,
                "{}".into(),
                PutOptions {
                    mode,
                    ..Default::default()
                },
            )
        };
        put(PutMode::Create).await.map_err(|e| match e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StoreError::Refused(format!(
                "S3 endpoint {endpoint} refused a write to {} for AWS_ACCESS_KEY_ID {}: the keys may read but not write",
                self.url_of(&key),
                self.key_id_shown()
            )),
            e => StoreError::request(format!("writing {}", self.url_of(&key)), e),
        })?;
        let second_create = put(PutMode::Create).await;
        let stale_update = put(PutMode::Update(UpdateVersion {
            e_tag: Some("\"0000000000000000\"".into()),
            version: None,
        }))
        .await;
        let _ = self.store.delete(&path).await;
        let refused = matches!(
            second_create,
            Err(object_store::Error::AlreadyExists { .. })
        ) && matches!(stale_update, Err(object_store::Error::Precondition { .. }));
        if refused {
            Ok(())
        } else {
            Err(StoreError::Refused(format!(
                "S3 endpoint {endpoint} does not honour conditional writes (If-None-Match / If-Match), \
                 so two consumers could overwrite each other's checkpoints; use a store that does, or set \
                 UNSAFE_SINGLE_WRITER=true if exactly one consumer ever runs"
            )))
        }
    }

    /// The S3 endpoint requests go to: `AWS_ENDPOINT_URL`, else AWS in `AWS_REGION`.
    pub fn endpoint(&self) -> String {
        self.args
            .aws_endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.args.aws_region))
    }
}

fn s3_builder(args: &LakeArgs, bucket: &str) -> Result<AmazonS3Builder, StoreError> {
    let setting = |message: &str| Err(StoreError::Setting(message.into()));
    for (name, value) in [
        ("AWS_TIMEOUT (--aws-timeout)", args.aws_timeout),
        (
            "AWS_CONNECT_TIMEOUT (--aws-connect-timeout)",
            args.aws_connect_timeout,
        ),
    ] {
        if value.is_zero() {
            return setting(&format!("{name} must be > 0"));
        }
    }
    // The client options first: the user's client options (a proxy, say)
    // change them, where setting them afterwards would drop those.
    let timeouts = ClientOptions::new()
        .with_connect_timeout(args.aws_connect_timeout)
        .with_timeout(args.aws_timeout);
    let mut builder = args
        .s3_options
        .iter()
        .fold(
            AmazonS3Builder::new().with_client_options(timeouts),
            |builder, (key, value)| builder.with_config(*key, value),
        )
        .with_bucket_name(bucket)
        .with_region(&args.aws_region)
        .with_virtual_hosted_style_request(false)
        .with_http_connector(crate::metrics::CountingConnector);
    if let Some(endpoint) = &args.aws_endpoint_url {
        let parsed = url::Url::parse(endpoint)
            .map_err(|e| StoreError::Setting(format!("AWS_ENDPOINT_URL {endpoint:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(StoreError::Setting(format!(
                "AWS_ENDPOINT_URL {endpoint:?}: expected http://host:port or https://host"
            )));
        }
        builder = builder
            .with_endpoint(endpoint.trim_end_matches('/'))
            .with_allow_http(parsed.scheme() == "http");
    }
    match (&args.aws_access_key_id, &args.aws_secret_access_key) {
        (Some(key), Some(secret)) => {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
            if let Some(token) = &args.aws_session_token {
                builder = builder.with_token(token);
            }
        }
        (Some(_), None) => {
            return setting("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)")
        }
        (None, Some(_)) => {
            return setting("AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)")
        }
        (None, None) if args.aws_endpoint_url.is_some() => return setting(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (needed for AWS_ENDPOINT_URL)",
        ),
        // On AWS without keys: the instance or web-identity credentials.
        (None, None) => {}
    }
    Ok(builder)
}

/// The innermost error's text: what a person needs ("connection refused").
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Loads `.env` from the working directory; variables already set win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_the_users_client_options_reach_the_s3_client() {
        let timeout = AmazonS3ConfigKey::Client(ClientConfigKey::Timeout);
        let connect = AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout);
        let proxy = AmazonS3ConfigKey::Client(ClientConfigKey::ProxyUrl);
        let defaults = s3_builder(&LakeArgs::default(), "lake").expect("a builder");
        assert_eq!(defaults.get_config_value(&timeout).as_deref(), Some("1m"));
        assert_eq!(defaults.get_config_value(&connect).as_deref(), Some("5s"));

        let mut args = LakeArgs {
            aws_timeout: Duration::from_secs(7),
            ..LakeArgs::default()
        };
        crate::config::FromEnvironment::read_environment(
            &mut args,
            &[
                ("AWS_PROXY_URL".to_string(), "http://proxy:3128".to_string()),
                // Read by clap into aws_timeout; not passed on a second time.
                ("AWS_TIMEOUT".to_string(), "99s".to_string()),
            ],
        );
        let set = s3_builder(&args, "lake").expect("a builder");
        assert_eq!(set.get_config_value(&timeout).as_deref(), Some("7s"));
        assert_eq!(set.get_config_value(&connect).as_deref(), Some("5s"));
        assert_eq!(
            set.get_config_value(&proxy).as_deref(),
            Some("http://proxy:3128")
        );
    }

    #[test]
    fn parses_lake_urls() {
        assert_eq!(
            Location::parse("s3://lake").expect("valid"),
            Location::S3 {
                bucket: "lake".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("s3://my-lake/a/b/").expect("valid"),
            Location::S3 {
                bucket: "my-lake".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/x").expect("valid"),
            Location::Local {
                root: "/tmp/x".into()
            }
        );
        assert!(
            matches!(Location::parse("data/lake"), Ok(Location::Local { root }) if root.is_absolute())
        );
        for bad in ["", "s3://", "s3://UPPER", "gs://x", "file://relative"] {
            let err = Location::parse(bad).expect_err(bad);
            assert!(err.to_string().starts_with("LAKE_URL"), "{err}");
        }
    }

    #[test]
    fn masks_secrets() {
        let args = LakeArgs {
            lake_url: "s3://lake".into(),
            aws_endpoint_url: None,
            aws_access_key_id: Some("AKIASECRETKEYID".into()),
            aws_secret_access_key: Some("very-secret".into()),
            aws_region: "us-east-1".into(),
            ..LakeArgs::default()
        };
        let shown = args.masked();
        assert!(
            !shown.contains("very-secret") && !shown.contains("AKIASECRETKEYID"),
            "{shown}"
        );
        assert!(shown.contains("AKIA****"));
    }
}
