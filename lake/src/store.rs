//! Opening the lake: `LAKE_URL` plus the `AWS_*` settings become an object
//! store rooted at the lake, for `s3://bucket[/prefix]` and local directories.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore};

/// The lake settings every binary shares (DESIGN §2).
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
}

impl LakeArgs {
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
    pub fn parse(url: &str) -> Result<Location, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("LAKE_URL is empty".into());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !is_bucket_name(bucket) {
                return Err(format!(
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
                return Err(format!(
                    "LAKE_URL {url:?}: a file:// URL needs an absolute path (file:///abs/path)"
                ));
            }
            return Ok(Location::Local {
                root: PathBuf::from(rest),
            });
        }
        if url.contains("://") {
            return Err(format!(
                "LAKE_URL {url:?}: use s3://bucket[/prefix], file:///abs/path or a local path"
            ));
        }
        let path = PathBuf::from(url);
        let root = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| format!("LAKE_URL {url:?}: cannot resolve a relative path: {e}"))?
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
    pub fn open(args: &LakeArgs) -> Result<Lake, String> {
        let location = Location::parse(&args.lake_url)?;
        let store: Arc<dyn ObjectStore> = match &location {
            Location::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    format!(
                        "LAKE_URL {}: cannot create directory {}: {e}",
                        args.lake_url,
                        root.display()
                    )
                })?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(root)
                        .map_err(|e| format!("LAKE_URL {}: {e}", args.lake_url))?,
                )
            }
            Location::S3 { bucket, prefix } => {
                let s3 = s3_builder(args, bucket)?
                    .build()
                    .map_err(|e| format!("LAKE_URL {}: {e}", args.lake_url))?;
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

    /// A lake-relative key as an object-store path.
    pub fn path(key: &str) -> Path {
        Path::from(key)
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
    /// set, creates it. Local lakes need nothing. The error is one line that
    /// names the endpoint or bucket.
    pub async fn ensure_bucket(&self, create: bool) -> Result<(), String> {
        let Location::S3 { bucket, .. } = &self.location else {
            return Ok(());
        };
        let endpoint = self.endpoint();
        let url = url::Url::parse(&endpoint)
            .map_err(|e| format!("AWS_ENDPOINT_URL {endpoint:?}: {e}"))?;
        let s3_bucket = rusty_s3::Bucket::new(
            url,
            rusty_s3::UrlStyle::Path,
            bucket.clone(),
            self.args.aws_region.clone(),
        )
        .map_err(|e| format!("AWS_ENDPOINT_URL {endpoint:?}: {e}"))?;
        let credentials = match (
            &self.args.aws_access_key_id,
            &self.args.aws_secret_access_key,
        ) {
            (Some(k), Some(s)) => Some(rusty_s3::Credentials::new(k.clone(), s.clone())),
            _ => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        use rusty_s3::S3Action;
        let head = s3_bucket
            .head_bucket(credentials.as_ref())
            .sign(Duration::from_secs(300));
        let response =
            client.head(head.as_str()).send().await.map_err(|e| {
                format!("S3 endpoint {endpoint} is unreachable: {}", root_cause(&e))
            })?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            403 => Err(format!(
                "S3 endpoint {endpoint} refused the credentials for bucket {bucket:?} (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
            )),
            404 if !create => Err(format!("bucket {bucket:?} does not exist at {endpoint}")),
            404 => {
                let Some(credentials) = credentials else {
                    return Err(format!("bucket {bucket:?} does not exist at {endpoint} and no credentials are set to create it"));
                };
                let action = s3_bucket.create_bucket(&credentials);
                let body = if self.args.aws_region == "us-east-1" { String::new() } else { action.body() };
                let response = client
                    .put(action.sign(Duration::from_secs(300)).as_str())
                    // Some servers refuse a PUT without an explicit length, even an empty one.
                    .header(reqwest::header::CONTENT_LENGTH, body.len())
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("S3 endpoint {endpoint} is unreachable: {}", root_cause(&e)))?;
                let status = response.status();
                // 409: someone else created it in the meantime, which is fine.
                if status.is_success() {
                    tracing::info!(bucket, endpoint, "created bucket");
                    Ok(())
                } else if status.as_u16() == 409 {
                    Ok(())
                } else {
                    Err(format!("cannot create bucket {bucket:?} at {endpoint}: HTTP {status}"))
                }
            }
            status => Err(format!("S3 endpoint {endpoint} answered HTTP {status} for bucket {bucket:?}")),
        }
    }

    /// Proves that the store refuses a conditional write that must fail, as
    /// the checkpoint protocol relies on; some S3-compatible servers ignore
    /// If-None-Match / If-Match. Local lakes use a file lock instead.
    pub async fn check_conditional_writes(&self) -> Result<(), String> {
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
        put(PutMode::Create)
            .await
            .map_err(|e| format!("writing {}: {e}", self.url_of(&key)))?;
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
            Err(format!(
                "S3 endpoint {endpoint} does not honour conditional writes (If-None-Match / If-Match), \
                 so two consumers could overwrite each other's checkpoints; use a store that does, or set \
                 UNSAFE_SINGLE_WRITER=true if exactly one consumer ever runs"
            ))
        }
    }

    fn endpoint(&self) -> String {
        self.args
            .aws_endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.args.aws_region))
    }
}

fn s3_builder(args: &LakeArgs, bucket: &str) -> Result<AmazonS3Builder, String> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&args.aws_region)
        .with_virtual_hosted_style_request(false)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(60)),
        );
    if let Some(endpoint) = &args.aws_endpoint_url {
        let parsed =
            url::Url::parse(endpoint).map_err(|e| format!("AWS_ENDPOINT_URL {endpoint:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "AWS_ENDPOINT_URL {endpoint:?}: expected http://host:port or https://host"
            ));
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
        }
        (Some(_), None) => {
            return Err("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)".into())
        }
        (None, Some(_)) => {
            return Err("AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)".into())
        }
        (None, None) if args.aws_endpoint_url.is_some() => return Err(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (needed for AWS_ENDPOINT_URL)"
                .into(),
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
            assert!(err.starts_with("LAKE_URL"), "{err}");
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
        };
        let shown = args.masked();
        assert!(
            !shown.contains("very-secret") && !shown.contains("AKIASECRETKEYID"),
            "{shown}"
        );
        assert!(shown.contains("AKIA****"));
    }
}
