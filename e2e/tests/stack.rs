//! The Docker Compose stack and the Makefile, checked without a Docker engine.
//!
//! * `tests/stack/check_stack.py` validates docker-compose.yml against the
//!   Compose specification's JSON schema and checks it, the Dockerfile, the
//!   MinIO init script and .env against each other and against the binaries'
//!   own `--help`; its self-test proves every check catches a broken copy.
//! * The pipeline runs with exactly the environment Compose gives each
//!   service (only MinIO's host swapped for a moto server), and the inspector
//!   reads the S3 lake through DuckDB's httpfs as `make duckdb` would.
//! * `make -n` of every target shows its commands; the stack targets, run with
//!   a stand-in `docker` on PATH (missing, without Compose, without an engine,
//!   working), say what is missing and point to `make demo`, or call Compose.
//! * Monitoring: a continuous consumer (Kafka, through an S3 fault proxy, and
//!   with its checkpoints taken over once) and a continuous refiner serve
//!   `/metrics` on `METRICS_ADDR`; their real scrapes are given to
//!   check_stack.py (`--metrics`), which checks that every metric and label
//!   the Grafana dashboard queries is in them.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{
    bin, free_port, http_get, metric, num, samples, tail, wait_until, Background, Env, Kafka, Moto,
};
use lake::{Lake, LakeArgs};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    bin("producer")
        .parent()
        .expect("the binaries' folder")
        .to_path_buf()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn checker(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join("tests/stack/check_stack.py"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(args)
        .output()
        .expect("python3 runs (pip install jsonschema pyyaml)")
}

#[test]
fn compose_file_dockerfile_and_init_script_pass_every_check() {
    let out = checker(&["--verbose"]);
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "tests/stack/check_stack.py failed:\n{stdout}\n{stderr}"
    );
    // The checks that matter ran, and found something to check.
    for group in [
        "schema",
        "flags",
        "env-read",
        "env-required",
        "depends-on",
        "images-pinned",
        "kafka-listeners",
        "policy",
        "dockerfile-workspace",
        "dockerfile-binaries",
        "dockerfile-models",
        "makefile",
        "metrics",
        "prometheus",
        "grafana",
        "dashboard",
        "dashboard-metrics",
        "status",
    ] {
        assert!(
            stdout.contains(&format!("ok   {group}:")),
            "check {group} did not run:\n{stdout}"
        );
    }
}

#[test]
fn every_check_catches_a_broken_copy() {
    let out = checker(&["--self-test"]);
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("0 problems"),
        "self-test of tests/stack/check_stack.py failed:\n{stdout}\n{stderr}"
    );
}

/// One service of docker-compose.yml with .env interpolated: its environment and argv.
fn service(name: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let out = checker(&["--print-service", name]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "--print-service {name}: {stderr}");
    let svc: Value = serde_json::from_str(&stdout).expect("JSON");
    let env = svc["environment"]
        .as_object()
        .expect("environment")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let argv = svc["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    (env, argv)
}

/// A binary with exactly a Compose service's environment, plus what the image
/// provides (PATH, HOME, DUCKDB_HTTPFS_EXTENSION), MinIO's host replaced by moto's.
fn as_in_compose(
    binary: &str,
    env: &BTreeMap<String, String>,
    moto: &Moto,
    home: &Path,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(bin(binary));
    cmd.env_clear()
        .current_dir(home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DUCKDB_HTTPFS_EXTENSION", testkit::httpfs_extension())
        .args(args);
    for (key, value) in env {
        let value = if key == "AWS_ENDPOINT_URL" {
            assert_eq!(value, "http://minio:9000", "compose's S3 endpoint");
            moto.endpoint.clone()
        } else {
            value.clone()
        };
        cmd.env(key, value);
    }
    cmd
}

fn succeed(mut cmd: Command, stdin: Option<&str>) -> (String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        tail(&stderr, 4000)
    );
    (stdout, stderr)
}

#[test]
fn pipeline_and_inspector_with_the_compose_settings_on_moto() {
    let (producer_env, _) = service("producer");
    let (consumer_env, _) = service("consumer");
    let (inspector_env, inspector_argv) = service("inspector");
    assert_eq!(
        inspector_argv,
        ["inspector", "shell"],
        "make duckdb's command"
    );
    assert_eq!(
        consumer_env.get("CREATE_BUCKET").map(String::as_str),
        Some("false")
    );
    let home = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();

    // minio-init's part: the bucket of LAKE_URL exists before the pipeline starts.
    let lake_url = inspector_env["LAKE_URL"].clone();
    let lake = Lake::open(&LakeArgs {
        lake_url: lake_url.clone(),
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_access_key_id: Some(inspector_env["AWS_ACCESS_KEY_ID"].clone()),
        aws_secret_access_key: Some(inspector_env["AWS_SECRET_ACCESS_KEY"].clone()),
        aws_region: inspector_env["AWS_REGION"].clone(),
        ..Default::default()
    })
    .expect("open the lake");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(lake.ensure_bucket(true))
        .expect("create the bucket");

    // The file-drop source (no broker here), with the services' own settings.
    let summary = home.path().join("summary.json");
    let summary_arg = summary.display().to_string();
    succeed(
        as_in_compose(
            "producer",
            &producer_env,
            &moto,
            home.path(),
            &[
                "--sink",
                "files",
                "--batches",
                "30",
                "--batch-size",
                "40",
                "--rate",
                "0",
                "--corrupt-ratio",
                "0.1",
                "--invalid-ratio",
                "0.05",
                "--seed",
                "11",
                "--summary",
                &summary_arg,
            ],
        ),
        None,
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("JSON");
    succeed(
        as_in_compose(
            "consumer",
            &consumer_env,
            &moto,
            home.path(),
            &["--source", "files", "--once"],
        ),
        None,
    );
    let valid = summary["valid_records"].as_u64().expect("valid_records");
    let dead = summary["invalid_records"]
        .as_u64()
        .expect("invalid_records")
        + summary["corrupt_batches"]
            .as_u64()
            .expect("corrupt_batches");
    assert!(valid > 0 && dead > 0, "{summary}");

    // `make duckdb`: the service's own command, a shell, fed two statements.
    let args: Vec<&str> = inspector_argv[1..].iter().map(String::as_str).collect();
    let (stdout, stderr) = succeed(
        as_in_compose("inspector", &inspector_env, &moto, home.path(), &args),
        Some(
            "SELECT count(*) AS bronze_rows FROM bronze.events;\n\
             SELECT count(*) AS dead_rows FROM dead_letters.events;\n",
        ),
    );
    assert!(
        stdout.contains(&format!("| {valid} "))
            && stdout.contains(&format!("| {dead} "))
            && stdout.contains(&lake_url),
        "the shell's counts ({valid}, {dead}):\n{stdout}\n{stderr}"
    );
    // httpfs, not the local mirror: no warning, no mirror directory.
    assert!(
        !stderr.contains("mirror") && !stderr.contains("warning"),
        "{stderr}"
    );
    assert!(!home.path().join(".cache/lakehouse/mirror").exists());

    let (status, _) = succeed(
        as_in_compose("inspector", &inspector_env, &moto, home.path(), &["status"]),
        None,
    );
    assert!(status.contains("through httpfs"), "{status}");
    let (sql, _) = succeed(
        as_in_compose(
            "inspector",
            &inspector_env,
            &moto,
            home.path(),
            &["init-sql"],
        ),
        None,
    );
    let host = moto.endpoint.trim_start_matches("http://");
    for part in [
        format!("KEY_ID '{}'", inspector_env["AWS_ACCESS_KEY_ID"]),
        format!("ENDPOINT '{host}'"),
        "URL_STYLE 'path'".to_string(),
        "USE_SSL false".to_string(),
        format!("REGION '{}'", inspector_env["AWS_REGION"]),
    ] {
        assert!(sql.contains(&part), "missing {part} in\n{sql}");
    }
    assert!(!sql.contains(&inspector_env["AWS_SECRET_ACCESS_KEY"]));
}

// ---------------------------------------------------------------------------
// The Makefile

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `make ARGS` in the repository, outside any make that runs this test.
fn make(args: &[&str], path: Option<&Path>, extra: &[(&str, &str)]) -> Output {
    let make = which("make").expect("make is installed");
    let mut cmd = Command::new(make);
    cmd.current_dir(repo())
        .args(args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::null());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.envs(extra.iter().copied());
    cmd.output().expect("make runs")
}

#[test]
fn make_dry_run_shows_each_targets_commands() {
    let help = make(&[], None, &[]);
    let (listing, stderr) = text(&help);
    assert!(help.status.success(), "make (help): {stderr}");
    let targets: Vec<String> = listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("make "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    let expected: &[(&str, &[&str])] = &[
        ("help", &["awk"]),
        ("build", &["cargo build --release --workspace --bins"]),
        (
            "demo",
            &[
                "cargo build --release --workspace --bins",
                "producer --sink files",
                "consumer --source files --once",
                "inspector query",
            ],
        ),
        (
            "test",
            &[
                "cargo build --release --workspace --bins",
                "cargo test --release --workspace --all-targets",
            ],
        ),
        (
            "start",
            &[
                "command -v docker",
                "docker compose version",
                "docker info",
                "make demo",
                "docker compose up -d --build",
                "http://localhost:9001",
                "http://localhost:9000",
                "localhost:19092",
                "MINIO_ROOT_USER / MINIO_ROOT_PASSWORD from .env",
            ],
        ),
        (
            "stop",
            &[
                "docker info",
                "docker compose stop producer consumer refiner",
            ],
        ),
        (
            "clean",
            &[
                "docker compose --profile tools down --volumes --remove-orphans",
                "rm -rf",
            ],
        ),
        (
            "logs",
            &[
                "docker info",
                "docker compose logs --follow --tail=200 producer consumer refiner",
            ],
        ),
        (
            "minio",
            &["xdg-open \"http://localhost:9001\"", "open the URL"],
        ),
        (
            "duckdb",
            &[
                "docker compose run --rm inspector",
                "docker compose build producer",
                "/inspector\" shell",
                "make demo",
            ],
        ),
        ("bench", &["bench"]),
    ];
    for (target, _) in expected {
        assert!(
            targets.iter().any(|t| t == target),
            "make help does not list {target}:\n{listing}"
        );
    }
    // As on a fresh clone: no local lake. A dry run prints the recipe and runs none of it.
    let no_lake = tempfile::tempdir().expect("temp dir");
    let no_lake = no_lake.path().join("no-lake");
    let no_lake = no_lake.to_str().expect("utf-8 path");
    for target in &targets {
        let out = make(&["-n", target], None, &[("LOCAL_LAKE", no_lake)]);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success() && !stdout.trim().is_empty(),
            "make -n {target}: {stderr}"
        );
        if let Some((_, lines)) = expected.iter().find(|(t, _)| t == target) {
            for line in *lines {
                assert!(
                    stdout.contains(line),
                    "make -n {target} does not show `{line}`:\n{stdout}"
                );
            }
        }
    }
}

/// A PATH with a stand-in `docker` (and `xdg-open`) that log their arguments,
/// and the few tools the recipes use; nothing else.
struct FakePath {
    dir: tempfile::TempDir,
}

impl FakePath {
    fn new(docker: bool, xdg_open: Option<bool>) -> FakePath {
        let dir = tempfile::tempdir().expect("tempdir");
        for tool in ["rm", "uname", "cat", "mkdir"] {
            if let Some(path) = which(tool) {
                std::os::unix::fs::symlink(path, dir.path().join(tool)).expect("symlink");
            }
        }
        let log = dir.path().join("calls.log");
        if docker {
            write_script(
                &dir.path().join("docker"),
                &format!(
                    "echo \"docker $*\" >> '{}'\n\
                     case \"$FAKE_DOCKER_MODE:$1 $2\" in\n\
                     \x20 no-compose:'compose version') echo \"docker: 'compose' is not a docker command.\" >&2; exit 1 ;;\n\
                     \x20 no-engine:info*) echo 'Cannot connect to the Docker daemon' >&2; exit 1 ;;\n\
                     esac\n\
                     [ \"$1 $2\" = 'image inspect' ] && exit 1\n\
                     exit 0\n",
                    log.display()
                ),
            );
        }
        if let Some(works) = xdg_open {
            write_script(
                &dir.path().join("xdg-open"),
                &format!(
                    "echo \"xdg-open $*\" >> '{}'\nexit {}\n",
                    log.display(),
                    if works { 0 } else { 3 }
                ),
            );
        }
        FakePath { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn stack_targets_without_docker_say_so_and_point_to_make_demo() {
    let no_docker = FakePath::new(false, None);
    for target in ["start", "stop", "logs"] {
        let out = make(&[target], Some(no_docker.path()), &[]);
        let (stdout, stderr) = text(&out);
        assert!(
            !out.status.success()
                && stderr.contains("Docker is not installed")
                && stderr.contains("`make demo`"),
            "make {target} without docker:\n{stdout}\n{stderr}"
        );
    }
    // A docker CLI without Compose, then without a running engine.
    let docker = FakePath::new(true, None);
    for (mode, says) in [
        ("no-compose", "Docker Compose v2 is missing"),
        ("no-engine", "the Docker engine is not running"),
    ] {
        let out = make(
            &["start"],
            Some(docker.path()),
            &[("FAKE_DOCKER_MODE", mode)],
        );
        let (stdout, stderr) = text(&out);
        assert!(
            !out.status.success() && stderr.contains(says) && stderr.contains("`make demo`"),
            "make start ({mode}):\n{stdout}\n{stderr}"
        );
        assert!(!docker.calls().contains("compose up"), "{}", docker.calls());
    }

    // clean still removes the local data.
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("data");
    std::fs::create_dir_all(data_dir.join("demo-lake")).expect("mkdir");
    let data_arg = format!("DATA_DIR={}", data_dir.display());
    let out = make(&["clean", &data_arg], Some(no_docker.path()), &[]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && !data_dir.exists() && stdout.contains("local data only"),
        "make clean without docker:\n{stdout}\n{stderr}"
    );

    // duckdb: no local lake yet → make demo; a local lake → the official
    // DuckDB CLI of .venv (make test made it) with the lake's views.
    let missing = format!("LOCAL_LAKE={}", data.path().join("nothing").display());
    let out = make(&["duckdb", &missing], Some(no_docker.path()), &[]);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("`make demo`"),
        "make duckdb without a lake:\n{stdout}\n{stderr}"
    );
    let lake = data.path().join("lake");
    std::fs::create_dir_all(&lake).expect("mkdir");
    let local = format!("LOCAL_LAKE={}", lake.display());
    let bins = format!("BIN={}", bin_dir().display());
    let make_bin = which("make").expect("make");
    let sql_dir = format!("DATA_DIR={}", data.path().join("data").display());
    let mut child = Command::new(make_bin)
        .current_dir(repo())
        .args(["duckdb", &local, &bins, &sql_dir])
        .env("PATH", no_docker.path())
        .env("HOME", data.path())
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("make duckdb");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b".mode csv\nSELECT 40 + 2 AS answer;\nSELECT count(*) AS n FROM bronze.events;\n",
        )
        .expect("stdin");
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = text(&out);
    // The CLI's csv mode ends its lines with \r\n.
    let lines: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    assert!(
        out.status.success()
            && stdout.contains("DuckDB on the local lake")
            && stdout.contains("DuckDB CLI v1.5.5")
            && lines.windows(2).any(|w| w == ["answer", "42"])
            && lines.windows(2).any(|w| w == ["n", "0"]),
        "make duckdb on a local lake:\n{stdout}\n{stderr}"
    );
}

#[test]
fn stack_targets_drive_docker_compose() {
    let fake = FakePath::new(true, None);
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("mkdir");
    let data_arg = format!("DATA_DIR={}", data_dir.display());
    let run = |args: &[&str]| {
        let out = make(args, Some(fake.path()), &[("FAKE_DOCKER_MODE", "ok")]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "make {args:?}:\n{stdout}\n{stderr}");
        stdout
    };
    let start = run(&["start"]);
    for part in [
        "http://localhost:9001",
        "http://localhost:9000",
        "localhost:19092",
        "MINIO_ROOT_USER / MINIO_ROOT_PASSWORD from .env",
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from .env",
        "make duckdb",
    ] {
        assert!(
            start.contains(part),
            "make start does not print {part}:\n{start}"
        );
    }
    run(&["stop"]);
    run(&["logs"]);
    run(&["duckdb"]);
    run(&["clean", &data_arg]);
    assert!(
        !data_dir.exists(),
        "make clean leaves {}",
        data_dir.display()
    );
    let calls = fake.calls();
    for call in [
        "docker compose up -d --build",
        "docker compose stop producer consumer refiner",
        "docker compose logs --follow --tail=200 producer consumer refiner",
        "docker image inspect lakehouse:local",
        "docker compose build producer",
        "docker compose run --rm inspector sh -c inspector init-sql --with-secrets > /tmp/lake.sql && exec duckdb -init /tmp/lake.sql",
        "docker compose --profile tools down --volumes --remove-orphans",
    ] {
        assert!(
            calls.lines().any(|l| l == call),
            "no `{call}` in the calls:\n{calls}"
        );
    }
    // `stop` leaves MinIO alone: no other stop, no down.
    assert_eq!(calls.matches(" stop ").count(), 1, "{calls}");
    assert_eq!(calls.matches(" down ").count(), 1, "{calls}");
}

#[test]
fn minio_opens_the_console_or_prints_its_url() {
    for (xdg_open, says) in [
        (None, "open the URL above"),
        (Some(false), "open the URL above"),
        (Some(true), "opened in your default browser"),
    ] {
        let fake = FakePath::new(false, xdg_open);
        let out = make(&["minio"], Some(fake.path()), &[]);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success()
                && stdout.contains("MinIO console: http://localhost:9001")
                && stdout.contains(says),
            "make minio ({xdg_open:?}):\n{stdout}\n{stderr}"
        );
        if xdg_open.is_some() {
            assert_eq!(fake.calls().trim(), "xdg-open http://localhost:9001");
        }
    }
}

// ---------------------------------------------------------------------------
// Monitoring: the real /metrics of a running consumer and refiner

/// A binary serving METRICS_ADDR on a free loopback port, killed on drop.
struct Served {
    addr: String,
    process: Background,
    log: PathBuf,
}

impl Served {
    fn start(env: &mut Env, binary: &str, args: &[&str]) -> Served {
        let addr = format!("127.0.0.1:{}", free_port());
        env.set("METRICS_ADDR", addr.clone());
        let log = env.dir.path().join(format!("{binary}-{}.log", free_port()));
        let file = std::fs::File::create(&log).expect("log file");
        let process = Background(
            env.command(binary, args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {binary}: {e}")),
        );
        Served { addr, process, log }
    }

    fn scrape(&self) -> String {
        match http_get(&self.addr, "/metrics") {
            Some((200, body)) => body,
            _ => String::new(),
        }
    }

    /// Waits until the scrape satisfies `ready`; panics with the process's log.
    fn wait_for(&mut self, what: &str, timeout: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.process.0.try_wait() {
                panic!("{what}: exited with {status}:\n{}", self.log_tail());
            }
            let scrape = self.scrape();
            if ready(&scrape) {
                return scrape;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what} on http://{}/metrics\nlast scrape:\n{}\nlog:\n{}",
                    self.addr,
                    tail(&scrape, 4000),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn log_tail(&self) -> String {
        tail(
            &std::fs::read_to_string(&self.log).unwrap_or_default(),
            6000,
        )
        .to_string()
    }
}

/// Rewrites every checkpoint of `table` with the same JSON and a new ETag, as
/// another writer would: the consumer's next conditional write of each is
/// refused, it gives the micro-batch up and reloads the partition.
fn take_over_checkpoints(env: &Env, table: &str) -> usize {
    let (lake, runtime) = env.lake();
    runtime.block_on(async {
        use futures::TryStreamExt;
        use object_store::ObjectStoreExt;
        let prefix = lake::Lake::path(&lake::layout::checkpoints_prefix(table));
        let metas: Vec<_> = lake
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .expect("list checkpoints");
        let mut taken = 0;
        for meta in metas
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".json"))
        {
            let bytes = lake
                .store
                .get(&meta.location)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            let mut changed = bytes.to_vec();
            changed.push(b'\n');
            lake.store
                .put(&meta.location, changed.into())
                .await
                .expect("put");
            taken += 1;
        }
        taken
    })
}

fn models_dir() -> String {
    repo().join("models").display().to_string()
}

/// The metrics Grafana's dashboard (monitoring/grafana/dashboards/) queries,
/// scraped from a real consumer and refiner, pass check_stack.py --metrics:
/// every metric and every label the dashboard filters or groups by exists.
#[test]
fn dashboard_queries_only_what_the_running_binaries_export() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-metrics", 3);
    let bucket = "lake-metrics";
    let direct = Env::kafka(&moto, &kafka, bucket);
    // The consumer writes through a proxy that fails its first Parquet PUTs
    // with a 500 (the S3 client retries those itself: 500s in
    // lakehouse_s3_requests_total) and resets its first conditional
    // checkpoint write, which the S3 client does not retry (not idempotent):
    // the consumer does, in lakehouse_retries_total.
    let proxy = testkit::FaultProxy::start(&moto.endpoint);
    proxy.add_rule(
        testkit::Rule::new(&[testkit::Op::Put], testkit::Fault::internal_error())
            .path_contains("/bronze/")
            .first(2),
    );
    proxy.add_rule(
        testkit::Rule::new(testkit::Op::CONDITIONAL_PUTS, testkit::Fault::Reset)
            .path_contains("/_checkpoints/events/")
            .first(1),
    );
    let mut consumer_env = Env::kafka(&moto, &kafka, bucket);
    consumer_env.set("AWS_ENDPOINT_URL", proxy.endpoint.clone());
    let mut consumer = Served::start(
        &mut consumer_env,
        "consumer",
        &["--source", "kafka", "--flush-interval", "1s"],
    );
    let round = |seed: &str, batches: &str| {
        direct.produce(&[
            "--sink",
            "kafka",
            "--batches",
            batches,
            "--batch-size",
            "50",
            "--rate",
            "0",
            "--corrupt-ratio",
            "0.05",
            "--invalid-ratio",
            "0.05",
            "--seed",
            seed,
        ])
    };
    let first = round("21", "60");
    let bronze = |scrape: &str| {
        metric(
            &samples(scrape),
            "lakehouse_records_total",
            &[("table", "events"), ("outcome", "bronze")],
        ) as u64
    };
    let valid = num(&first, "valid_records");
    consumer.wait_for("the first round in bronze", Duration::from_secs(120), |s| {
        bronze(s) >= valid
    });
    assert!(
        proxy.injected(testkit::FaultKind::Status) >= 1
            && proxy.injected(testkit::FaultKind::Reset) == 1,
        "{}",
        proxy.summary()
    );

    // Probes: alive, and ready once it owns partitions and the bucket answers.
    assert_eq!(
        http_get(&consumer.addr, "/healthz").map(|(s, _)| s),
        Some(200)
    );
    wait_until("the consumer's /readyz", Duration::from_secs(30), || {
        http_get(&consumer.addr, "/readyz")
            .is_some_and(|(s, body)| s == 200 && body.contains("ready"))
    });

    // Another writer takes the checkpoints over: the consumer's next
    // conditional write of each is refused (lakehouse_lost_ownership_total),
    // it gives the micro-batch up and reloads the partition from its
    // checkpoint, then seeks back there when the next message comes.
    let taken = take_over_checkpoints(&direct, "events");
    assert!(taken > 0, "no checkpoint to take over");
    let second = round("22", "30");
    consumer.wait_for(
        "lost ownership after the take-over",
        Duration::from_secs(120),
        |s| {
            metric(
                &samples(s),
                "lakehouse_lost_ownership_total",
                &[("table", "events")],
            ) >= 1.0
        },
    );
    let third = round("23", "24");
    let expected = valid + num(&second, "valid_records") + num(&third, "valid_records");
    let consumer_scrape = consumer.wait_for(
        "all three rounds in bronze after the take-over",
        Duration::from_secs(120),
        |s| bronze(s) >= expected,
    );
    assert_eq!(bronze(&consumer_scrape), expected, "records counted twice");

    // The refiner, continuous, on the same lake.
    let mut refiner_env = Env::s3(&moto, bucket);
    refiner_env
        .set("MODELS_DIR", models_dir())
        .set("REFINE_INTERVAL", "1s");
    let mut refiner = Served::start(&mut refiner_env, "refiner", &[]);
    let refiner_scrape =
        refiner.wait_for("the models' first runs", Duration::from_secs(180), |s| {
            metric(
                &samples(s),
                "lakehouse_model_runs_total",
                &[("outcome", "ok")],
            ) > 0.0
                && metric(&samples(s), "lakehouse_model_rows_written_total", &[]) > 0.0
                && s.contains("lakehouse_model_version_lag{")
        });
    assert_eq!(
        http_get(&refiner.addr, "/healthz").map(|(s, _)| s),
        Some(200)
    );

    // What the dashboard shows is in the scrapes; check_stack.py checks the rest.
    for name in [
        "lakehouse_records_total",
        "lakehouse_dead_letters_total",
        "lakehouse_messages_total",
        "lakehouse_micro_batches_total",
        "lakehouse_commit_duration_seconds_bucket",
        "lakehouse_written_bytes_total",
        "lakehouse_written_files_total",
        "lakehouse_s3_requests_total",
        "lakehouse_retries_total",
        "lakehouse_kafka_lag_messages",
        "lakehouse_freshness_seconds",
        "lakehouse_owned_partitions",
        "lakehouse_lost_ownership_total",
        "process_resident_memory_bytes",
    ] {
        assert!(
            consumer_scrape.contains(&format!("\n{name}")),
            "the consumer's scrape has no {name}:\n{consumer_scrape}"
        );
    }
    let scrapes = tempfile::tempdir().expect("tempdir");
    let consumer_file = scrapes.path().join("consumer.prom");
    let refiner_file = scrapes.path().join("refiner.prom");
    std::fs::write(&consumer_file, &consumer_scrape).expect("write");
    std::fs::write(&refiner_file, &refiner_scrape).expect("write");
    let files = [
        consumer_file.display().to_string(),
        refiner_file.display().to_string(),
    ];
    let out = checker(&["--verbose", "--metrics", &files[0], &files[1]]);
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("ok   dashboard-scrape:"),
        "check_stack.py --metrics failed:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("skip dashboard-scrape"), "{stdout}");
    // And each scrape check catches a dashboard or scrape broken for it.
    let out = checker(&["--self-test", "--metrics", &files[0], &files[1]]);
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("0 problems") && !stdout.contains("skipped"),
        "check_stack.py --self-test --metrics failed:\n{stdout}\n{stderr}"
    );
    drop(refiner);
    drop(consumer);
}
