//! The lake's S3 path against a real S3 API server (moto): bucket creation,
//! conditional checkpoint writes, and one-line errors for a bad endpoint.

mod common;

use common::Moto;
use lake::checkpoint::{self, CheckpointError};
use lake::layout::SourceId;
use lake::{Lake, LakeArgs};

fn args(endpoint: &str, bucket: &str) -> LakeArgs {
    LakeArgs {
        lake_url: format!("s3://{bucket}/some/prefix"),
        aws_endpoint_url: Some(endpoint.to_string()),
        aws_access_key_id: Some("testing-key".into()),
        aws_secret_access_key: Some("testing-secret".into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    }
}

fn p1() -> SourceId {
    SourceId::kafka("events", "events", 1)
}

#[tokio::test]
async fn conditional_checkpoint_writes_on_s3() {
    let moto = Moto::start();
    let lake = Lake::open(&args(&moto.endpoint, "ckpt-bucket")).expect("open");
    let missing = lake
        .ensure_bucket(false)
        .await
        .expect_err("bucket does not exist yet")
        .to_string();
    assert!(missing.contains("ckpt-bucket"), "{missing}");
    lake.ensure_bucket(true).await.expect("create bucket");
    lake.ensure_bucket(true).await.expect("idempotent");
    lake.check_conditional_writes()
        .await
        .expect("moto honours If-None-Match and If-Match");

    let first = checkpoint::load(&lake, &p1()).await.expect("load");
    assert!(first.version.is_none());
    let a = checkpoint::write(&lake, &first, first.checkpoint.clone(), "a")
        .await
        .expect("create");
    let stale = checkpoint::write(&lake, &first, first.checkpoint.clone(), "b")
        .await
        .expect_err("If-None-Match");
    assert!(matches!(stale, CheckpointError::Lost { .. }), "{stale}");
    let b = checkpoint::write(&lake, &a, a.checkpoint.clone(), "a")
        .await
        .expect("If-Match");
    let zombie = checkpoint::write(&lake, &a, a.checkpoint.clone(), "zombie")
        .await
        .expect_err("stale ETag");
    assert!(matches!(zombie, CheckpointError::Lost { .. }), "{zombie}");
    let reread = checkpoint::load(&lake, &p1()).await.expect("load");
    assert_eq!(reread.version, b.version);
    assert_eq!(reread.checkpoint.write_token, b.checkpoint.write_token);
}

#[tokio::test]
async fn unreachable_endpoint_is_one_line_naming_it() {
    let port = common::free_port();
    let lake = Lake::open(&args(&format!("http://127.0.0.1:{port}"), "lake"))
        .expect("open makes no request");
    let err = lake
        .ensure_bucket(true)
        .await
        .expect_err("nothing listens there")
        .to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && !err.contains('\n'),
        "{err}"
    );
}
