//! `inspector serve` in a real browser: a local lake filled end to end
//! (producer files sink → `consumer --once` → `refiner --once`), the status
//! page loaded in headless Chromium, and every number the page renders (read
//! from the DOM by `data-testid`) compared with the lake's counts read
//! through `inspector query`; every JSON endpoint must give the same
//! numbers. Then more data arrives, and the page, reloaded, follows it.
//! A screenshot is kept at `$CARGO_TARGET_DIR/artifacts/status-page.png`;
//! with `UPDATE_SCREENSHOT=1` it is also copied to `docs/status-page.png`,
//! the README's.
//!
//! Chromium is required: without it the test fails and says how to install
//! it, rather than passing without having looked at the page.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The fake consumer's `/metrics`: fixed values the page must show.
const METRICS: &str = "# TYPE lakehouse_records_total counter\n\
    lakehouse_records_total{outcome=\"bronze\",table=\"events\"} 11000\n\
    lakehouse_records_total{outcome=\"dead_letter\",table=\"events\"} 321\n\
    lakehouse_kafka_lag_messages{partition=\"0\",topic=\"events\"} 5\n\
    lakehouse_kafka_lag_messages{partition=\"1\",topic=\"events\"} 7\n\
    lakehouse_freshness_seconds{table=\"events\"} 3\n\
    process_resident_memory_bytes 52428800\n";

#[test]
fn status_page_shows_the_lakes_numbers() {
    let chromium = chromium();
    let mut env = Env::new();
    let lake = env.dir.path().join("lake");
    env.set("LAKE_URL", format!("file://{}", lake.display()));
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let models = models.display().to_string();

    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "files"]);
    let summary = env.produce(&args);
    env.run(
        "consumer",
        &["--source", "files", "--once", "--flush-records", "2000"],
    );
    env.run("refiner", &["--once", "--models", &models]);
    assert_exactly_once(&env, &summary);

    let metrics_url = fake_metrics_endpoint();
    let dead_url = format!("http://127.0.0.1:{}/metrics", free_port());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let stdout_path = env.dir.path().join("serve.out");
    let _serve = Background(
        env.command(
            "inspector",
            &[
                "serve",
                "--addr",
                &addr,
                "--metrics-url",
                &metrics_url,
                "--metrics-url",
                &dead_url,
            ],
        )
        .stdout(std::fs::File::create(&stdout_path).expect("serve.out"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn inspector serve"),
    );
    // /api/tables answers once the lake is open.
    wait_until("inspector serve", Duration::from_secs(60), || {
        get(port, "/api/tables").is_some_and(|(status, _)| status == 200)
    });
    let printed = std::fs::read_to_string(&stdout_path).expect("serve.out");
    assert!(
        printed.contains(&format!("http://127.0.0.1:{port}/")),
        "serve prints its URL: {printed:?}"
    );

    let expected = Expected::read(&env);
    assert_eq!(expected.bronze, num(&summary, "valid_records"));
    // Gold agrees with bronze after a run from scratch (no duplicates were
    // produced), so the gold totals the page shows are meaningful too.
    assert_eq!(expected.gold_events, expected.bronze);
    assert_eq!(expected.gold_dead_letters, expected.dead_letters);
    eprintln!("expected: {expected:#?}");
    let page = load(&chromium, port, &env.dir.path().join("chromium"));
    check_page(&page, &expected);
    check_metrics(&page);
    check_endpoints(port, &expected);
    // The page polls by itself: within the 15 s of virtual time it has
    // refreshed at least twice (every 5 s).
    let refreshes: u64 = number(&page, "refresh-count");
    assert!(refreshes >= 2, "the page refreshed {refreshes} times");

    // New data: the next snapshot (after the 2 s cache) has it.
    let second = env.produce(&[
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
        "8",
        "--sink",
        "files",
    ]);
    env.run("consumer", &["--source", "files", "--once"]);
    env.run("refiner", &["--once", "--models", &models]);
    let after = Expected::read(&env);
    assert_eq!(
        after.bronze,
        num(&summary, "valid_records") + num(&second, "valid_records")
    );
    std::thread::sleep(Duration::from_millis(2500));
    check_endpoints(port, &after);
    let page = load(&chromium, port, &env.dir.path().join("chromium"));
    check_page(&page, &after);

    screenshot(&chromium, port, &env.dir.path().join("chromium"));
}

/// The lake's numbers, read through `inspector query` (and `history`).
#[derive(Debug)]
struct Expected {
    bronze: u64,
    dead_letters: u64,
    by_code: BTreeMap<String, u64>,
    /// The newest dead letter's code, in the page's order.
    newest_code: String,
    bronze_version: u64,
    /// The newest bronze commit: version, rows added, files added.
    newest_commit: (u64, u64, u64),
    /// `silver.x` / `gold.x` → rows.
    models: BTreeMap<String, u64>,
    gold_events: u64,
    gold_dead_letters: u64,
}

impl Expected {
    fn read(env: &Env) -> Expected {
        let by_code = env
            .query("SELECT error_code, count(*) AS n FROM dead_letters.events GROUP BY ALL")
            .iter()
            .map(|r| (text(&r["error_code"]), r["n"].as_u64().expect("n")))
            .collect();
        let newest = env.query(
            "SELECT error_code FROM dead_letters.events ORDER BY ingested_at DESC, \
             source_offset DESC NULLS LAST, source_key DESC NULLS LAST, record_index DESC NULLS LAST LIMIT 1",
        );
        let views = env.query(
            "SELECT table_schema || '.' || table_name AS v FROM information_schema.tables \
             WHERE table_schema IN ('silver', 'gold') ORDER BY v",
        );
        let models: BTreeMap<String, u64> = views
            .iter()
            .map(|r| {
                let view = text(&r["v"]);
                let rows = env.count(&format!("SELECT count(*) FROM {view}"));
                (view, rows)
            })
            .collect();
        for model in [
            "silver.events",
            "gold.events_per_minute",
            "gold.dead_letter_rate",
        ] {
            assert!(
                models.contains_key(model),
                "the refiner wrote no {model}: {models:?}"
            );
        }
        let history = env.run(
            "inspector",
            &[
                "history",
                "bronze.events",
                "--limit",
                "1",
                "--format",
                "json",
            ],
        );
        let history: Value = serde_json::from_slice(&history.stdout).expect("history is JSON");
        let commit = &history[0];
        let field = |name: &str| commit[name].as_u64().expect(name);
        Expected {
            bronze: env.count("SELECT count(*) FROM bronze.events"),
            dead_letters: env.count("SELECT count(*) FROM dead_letters.events"),
            by_code,
            newest_code: text(&newest[0]["error_code"]),
            bronze_version: field("version"),
            newest_commit: (field("version"), field("rows_added"), field("files_added")),
            models,
            gold_events: env.count("SELECT sum(events) FROM gold.events_per_minute"),
            gold_dead_letters: env.count("SELECT sum(dead_letters) FROM gold.dead_letter_rate"),
        }
    }
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

/// The numbers the page rendered, compared with the lake's.
fn check_page(page: &BTreeMap<String, String>, expected: &Expected) {
    assert_eq!(page["page-state"], "ok", "the page did not load its data");
    assert!(
        page["last-refresh"].starts_with("20"),
        "last refresh: {:?}",
        page["last-refresh"]
    );
    assert_eq!(number(page, "bronze-rows-events"), expected.bronze);
    assert_eq!(number(page, "dead-letters-events"), expected.dead_letters);
    assert_eq!(
        number(page, "bronze-version-events"),
        expected.bronze_version
    );
    assert_eq!(number(page, "open-intents-events"), 0);
    let freshness = &page["freshness-events"];
    assert!(
        freshness.ends_with(" s") || freshness.contains("min"),
        "freshness: {freshness:?}"
    );
    for (code, n) in &expected.by_code {
        assert_eq!(
            number(page, &format!("dead-letters-code-events-{code}")),
            *n,
            "dead letters with error_code {code}"
        );
    }
    let shown_codes = page
        .keys()
        .filter(|k| k.starts_with("dead-letters-code-events-"))
        .count();
    assert_eq!(shown_codes, expected.by_code.len(), "every code, no other");
    assert_eq!(
        page["dead-letter-sample-code-events-0"],
        expected.newest_code
    );
    assert!(page.contains_key("dead-letter-sample-message-events-0"));
    // Files source: no Kafka lag, shown as n/a with the reason.
    assert_eq!(page["kafka-lag-status"], "n/a");
    assert!(
        page["kafka-lag-reason"].contains("files source"),
        "{:?}",
        page["kafka-lag-reason"]
    );
    let (version, rows, files) = expected.newest_commit;
    assert_eq!(page["batch-table-0"], "events");
    assert_eq!(number(page, "batch-version-0"), version);
    assert_eq!(number(page, "batch-rows-0"), rows);
    assert_eq!(number(page, "batch-files-0"), files);
    for (view, rows) in &expected.models {
        assert_eq!(
            number(page, &format!("model-rows-{view}")),
            *rows,
            "rows of {view}"
        );
    }
    assert_eq!(page["model-state-gold.events_per_minute"], "ok");
    assert_eq!(number(page, "gold-events-total"), expected.gold_events);
    assert_eq!(
        number(page, "gold-events-per-minute-rows"),
        expected.models["gold.events_per_minute"]
    );
    assert_eq!(
        number(page, "gold-dead-letters-total"),
        expected.gold_dead_letters
    );
    assert_eq!(
        number(page, "gold-dead-letter-rate-rows"),
        expected.models["gold.dead_letter_rate"]
    );
}

/// The fake endpoint's values, and the dead one shown as down.
fn check_metrics(page: &BTreeMap<String, String>) {
    assert_eq!(page["metrics-up-0"], "up");
    assert_eq!(number(page, "metrics-records-bronze-0"), 11000);
    assert_eq!(number(page, "metrics-records-dead-letter-0"), 321);
    assert_eq!(number(page, "metrics-kafka-lag-0"), 12);
    assert_eq!(page["metrics-freshness-0"], "3 s");
    assert_eq!(page["metrics-rss-0"], "50.0 MiB");
    assert_eq!(page["metrics-up-1"], "down");
}

/// Every JSON endpoint gives the numbers the page shows.
fn check_endpoints(port: u16, expected: &Expected) {
    let api = json(port, "/api");
    for path in [
        "/api/all",
        "/api/tables",
        "/api/kafka-lag",
        "/api/dead-letters",
        "/api/batches",
        "/api/models",
        "/api/gold",
        "/api/metrics",
    ] {
        assert!(api.get(path).is_some(), "/api does not list {path}: {api}");
    }
    let tables = &json(port, "/api/tables")["tables"]["events"];
    assert_eq!(tables["bronze_rows"], expected.bronze, "{tables}");
    assert_eq!(tables["dead_letters"], expected.dead_letters, "{tables}");
    assert_eq!(
        tables["bronze_version"], expected.bronze_version,
        "{tables}"
    );
    assert!(tables["freshness_seconds"].as_f64().is_some(), "{tables}");

    let dead = &json(port, "/api/dead-letters")["dead_letters"]["events"];
    let by_code: BTreeMap<String, u64> = dead["by_code"]
        .as_array()
        .expect("by_code")
        .iter()
        .map(|r| (text(&r["error_code"]), r["count"].as_u64().expect("count")))
        .collect();
    assert_eq!(by_code, expected.by_code);
    // Everything was ingested within the last hour: the per-minute series
    // holds every dead letter.
    let per_minute: u64 = dead["per_minute"]["rows"]
        .as_array()
        .expect("per_minute")
        .iter()
        .filter_map(|r| r["count"].as_u64())
        .sum();
    assert_eq!(per_minute, expected.dead_letters);
    assert_eq!(
        dead["newest"][0]["error_code"],
        expected.newest_code.as_str()
    );

    let lag = &json(port, "/api/kafka-lag")["kafka_lag"];
    assert_eq!(lag["available"], false, "{lag}");

    let batches = &json(port, "/api/batches")["batches"];
    let (version, rows, files) = expected.newest_commit;
    assert_eq!(batches[0]["version"], version, "{batches}");
    assert_eq!(batches[0]["rows_added"], rows, "{batches}");
    assert_eq!(batches[0]["files_added"], files, "{batches}");

    let models = &json(port, "/api/models")["models"];
    for (view, rows) in &expected.models {
        assert_eq!(models[view]["rows"], *rows, "{view}: {models}");
    }
    let gold = &json(port, "/api/gold")["gold"];
    assert_eq!(
        gold["events_per_minute"]["total_events"],
        expected.gold_events
    );
    assert_eq!(
        gold["dead_letter_rate"]["total_dead_letters"],
        expected.gold_dead_letters
    );

    let metrics = &json(port, "/api/metrics")["metrics"];
    assert_eq!(metrics[0]["up"], true, "{metrics}");
    assert_eq!(metrics[0]["records"]["bronze"], 11000.0, "{metrics}");
    assert_eq!(metrics[0]["kafka_lag_messages"], 12.0, "{metrics}");
    assert_eq!(metrics[1]["up"], false, "{metrics}");

    let all = json(port, "/api/all");
    assert_eq!(all["tables"]["events"]["bronze_rows"], expected.bronze);
    assert_eq!(all["metrics"][0]["up"], true);
}

/// `data-testid` → the text of a number, without its thousands separators.
fn number(page: &BTreeMap<String, String>, testid: &str) -> u64 {
    let shown = page
        .get(testid)
        .unwrap_or_else(|| panic!("the page has no data-testid={testid:?}"));
    shown
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("data-testid={testid:?} is not a number: {shown:?}"))
}

/// Chromium, or a failure that says how to get it.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let path = dir.join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!(
        "Chromium is missing: the status page test loads the page in headless Chromium. \
         Install it with `apt-get install chromium` (Debian/Ubuntu), then run the test again."
    );
}

/// Chromium with its own profile, stopped if it hangs.
fn run_chromium(chromium: &Path, profile: &Path, args: &[String]) -> String {
    let out_path = profile.with_extension("out");
    let mut child = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=15000",
        ])
        .args(args)
        .stdout(std::fs::File::create(&out_path).expect("chromium output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            assert!(status.success(), "chromium {args:?} exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&out_path).expect("chromium output")
}

/// The page after 15 s of virtual time, as `data-testid` → text.
fn load(chromium: &Path, port: u16, profile: &Path) -> BTreeMap<String, String> {
    let dom = run_chromium(
        chromium,
        profile,
        &["--dump-dom".into(), format!("http://127.0.0.1:{port}/")],
    );
    let page = testids(&dom);
    assert!(
        page.contains_key("bronze-rows-events"),
        "the page rendered no tables:\n{}",
        tail(&dom, 3000)
    );
    page
}

/// Screenshot kept at `$CARGO_TARGET_DIR/artifacts/` and copied to docs/.
fn screenshot(chromium: &Path, port: u16, profile: &Path) {
    let artifacts = target_dir().join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let png = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        chromium,
        profile,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,2200".into(),
            format!("http://127.0.0.1:{port}/"),
        ],
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} is not a plausible screenshot ({} bytes)",
        png.display(),
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
    // The README's copy changes only when asked: a test run leaves the
    // repository as it found it.
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/status-page.png");
        std::fs::copy(&png, &docs).expect("copy the screenshot to docs/");
        eprintln!("copied to {}", docs.display());
    }
}

/// `$CARGO_TARGET_DIR`, else the target directory this test runs from
/// (`<target>/release/deps/status_page-…`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf()
}

/// Every element with a `data-testid`, by id, with its text (the elements
/// the page marks hold text only). An id used twice fails the test: ids
/// must be stable and unique.
fn testids(dom: &str) -> BTreeMap<String, String> {
    const MARK: &str = "data-testid=\"";
    let mut out = BTreeMap::new();
    let mut rest = dom;
    while let Some(at) = rest.find(MARK) {
        rest = &rest[at + MARK.len()..];
        let end = rest.find('"').expect("a closing quote");
        let id = unescape(&rest[..end]);
        rest = &rest[end + 1..];
        // The rest of the start tag: attribute values may hold `>`.
        let mut quoted = false;
        let close = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == '>' && !quoted
            })
            .map(|(i, _)| i)
            .expect("the end of the tag");
        let body = &rest[close + 1..];
        let text = unescape(body[..body.find('<').unwrap_or(body.len())].trim());
        assert!(
            out.insert(id.clone(), text).is_none(),
            "data-testid={id:?} is used twice"
        );
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// `GET path` of the page's server.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get(&format!("127.0.0.1:{port}"), path)
}

fn json(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path).unwrap_or_else(|| panic!("GET {path}: no answer"));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// A `/metrics` endpoint answering [`METRICS`] to every request, on a
/// thread that lives as long as the test.
fn fake_metrics_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake /metrics");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head, then answer and close.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{METRICS}",
                METRICS.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/metrics")
}
