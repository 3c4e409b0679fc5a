use super::*;

fn gold(name: &str, text: &str) -> Result<Model, String> {
    parse(
        TableRef::new(Layer::Gold, name),
        &format!("models/gold/{name}.sql"),
        text,
    )
}

const PER_MINUTE: &str = "\
-- Events per minute and type.
-- materialized: incremental
-- time_column: minute
-- bucket: 1 minute          (recomputed when new input arrives)
-- lookback: 24 hours
SELECT time_bucket(INTERVAL 1 minute, event_ts) AS minute, event_type, count(*) AS events
FROM silver.events -- not bronze.clicks
WHERE page <> 'gold.fake'
GROUP BY ALL;
";

#[test]
fn a_header_and_its_inputs() {
    let model = gold("events_per_minute", PER_MINUTE).expect("parses");
    assert_eq!(
        model.header,
        Header {
            materialized: Materialized::Incremental,
            unique_key: None,
            time_column: "minute".into(),
            bucket_seconds: 60,
            lookback_seconds: 86_400,
        }
    );
    assert_eq!(
        model.inputs,
        BTreeSet::from([TableRef::new(Layer::Silver, "events")])
    );
    assert!(model.sql.starts_with("SELECT time_bucket"));
    assert!(model.sql.ends_with("GROUP BY ALL"), "{}", model.sql);
}

#[test]
fn a_bad_header_is_one_line_naming_the_problem() {
    let cases = [
        ("-- time_column: t\n-- bucket: 1 minute\nSELECT * FROM silver.x", "no `materialized:`"),
        ("-- materialized: incremental\n-- bucket: 1 minute\nSELECT * FROM silver.x", "no `time_column:`"),
        ("-- materialized: incremental\n-- time_column: t\nSELECT * FROM silver.x", "no `bucket:`"),
        ("-- materialized: sometimes\n-- time_column: t\n-- bucket: 1 minute\nSELECT 1", "use incremental or table"),
        ("-- materialized: incremental\n-- time_column: t\n-- bucket: 7 minutes\nSELECT * FROM silver.x", "does not divide a day"),
        ("-- materialized: incremental\n-- time_column: t\n-- bucket: 1 fortnight\nSELECT * FROM silver.x", "unknown unit `fortnight`"),
        ("-- materialized: incremental\n-- time_colum: t\n-- bucket: 1 minute\nSELECT * FROM silver.x", "unknown header field `time_colum`"),
        ("-- materialized: incremental\n-- time_column: t\n-- bucket: 1 minute\nSELECT 1", "reads no table"),
        ("-- materialized: incremental\n-- time_column: t\n-- bucket: 1 minute\n", "no SQL"),
        ("-- materialized: incremental\n-- time_column: t\n-- bucket: 1 minute\nSELECT * FROM gold.m", "its own table gold.m"),
    ];
    for (text, expected) in cases {
        let error = gold("m", text).expect_err(text);
        assert!(error.contains(expected), "{text:?}: {error}");
        assert!(!error.contains('\n'), "{error}");
    }
}

#[test]
fn durations() {
    assert_eq!(duration("1 minute"), Ok(60));
    assert_eq!(duration("24 hours"), Ok(86_400));
    assert_eq!(duration("90s"), Ok(90));
    assert_eq!(duration("1 day"), Ok(86_400));
    assert!(duration("minute").is_err());
}

#[test]
fn renaming_an_input_leaves_literals_and_other_tables() {
    let sql = "SELECT 'silver.events' AS s, e.x FROM silver.events e JOIN gold.silver.events g USING (x) JOIN SILVER.EVENTS f USING (x)";
    let renamed = rename_input(
        sql,
        &TableRef::new(Layer::Silver, "events"),
        "changes.silver__events",
    );
    assert_eq!(
        renamed,
        "SELECT 'silver.events' AS s, e.x FROM changes.silver__events e JOIN gold.silver.events g USING (x) JOIN changes.silver__events f USING (x)"
    );
}

fn write(dir: &Path, layer: &str, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join(layer)).expect("dir");
    std::fs::write(dir.join(layer).join(format!("{name}.sql")), text).expect("write");
}

const HEADER: &str = "-- materialized: incremental\n-- time_column: t\n-- bucket: 1 minute\n";

#[test]
fn models_run_after_what_they_read_and_cycles_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "gold",
        "b",
        &format!("{HEADER}SELECT * FROM gold.a"),
    );
    write(
        dir.path(),
        "gold",
        "a",
        &format!("{HEADER}SELECT * FROM silver.events"),
    );
    write(
        dir.path(),
        "gold",
        "c",
        &format!("{HEADER}SELECT * FROM gold.d"),
    );
    write(
        dir.path(),
        "gold",
        "d",
        &format!("{HEADER}SELECT * FROM gold.c"),
    );
    write(dir.path(), "gold", "broken", "SELECT * FROM silver.events");
    let contracts = [ContractInfo {
        table: "events".into(),
        event_time: "event_ts".into(),
        key: Some("event_id".into()),
    }];
    let (models, errors) = load(dir.path(), &contracts);
    let names: Vec<String> = models.iter().map(|m| m.output.to_string()).collect();
    assert_eq!(names, ["silver.events", "gold.a", "gold.b"]);
    assert_eq!(models[0].header.unique_key.as_deref(), Some("event_id"));
    assert_eq!(models[0].sql, "SELECT * FROM bronze.events");
    let mut messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    messages.sort();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].contains("broken.sql: the header has no `materialized:`"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("c.sql: a cycle between models: it reads gold.d"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("d.sql: a cycle between models: it reads gold.c"),
        "{messages:?}"
    );
}

#[test]
fn a_file_replaces_the_default_silver_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "silver",
        "events",
        "-- materialized: incremental\n-- time_column: event_ts\n-- bucket: 1 hour\nSELECT * FROM bronze.events WHERE user_id > 0",
    );
    let contracts = [ContractInfo {
        table: "events".into(),
        event_time: "event_ts".into(),
        key: Some("event_id".into()),
    }];
    let (models, errors) = load(dir.path(), &contracts);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(models.len(), 1);
    assert!(models[0].sql.ends_with("user_id > 0"));
    assert_eq!(models[0].header.unique_key, None);
}
