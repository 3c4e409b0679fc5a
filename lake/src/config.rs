//! Settings shared by more than one binary besides the lake's own: Kafka
//! connection settings and human-readable sizes.

/// Kafka settings shared by the producer and consumer (docs/DESIGN.md §2).
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub kafka_bootstrap_servers: String,
    /// Topic that carries the batches.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "events")]
    pub kafka_topic: String,
    /// Extra librdkafka setting passed through unchanged, e.g.
    /// `--kafka-setting security.protocol=SASL_SSL` (repeatable). Environment
    /// variables `KAFKA_SETTING_<NAME>` do the same: `KAFKA_SETTING_SASL_MECHANISMS=PLAIN`
    /// becomes `sasl.mechanisms=PLAIN`.
    #[arg(long = "kafka-setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub kafka_settings: Vec<(String, String)>,
    /// The `KAFKA_SETTING_*` variables, read at start, sorted by key.
    #[arg(skip)]
    pub env_settings: Vec<(String, String)>,
}

/// Settings that clap cannot name one by one (variables with a prefix), read
/// from the process environment once, by [`parse_command_line`], so that
/// nothing below `main` looks at the environment.
pub trait FromEnvironment {
    fn read_environment(&mut self, vars: &[(String, String)]);
}

impl FromEnvironment for KafkaArgs {
    fn read_environment(&mut self, vars: &[(String, String)]) {
        self.env_settings = vars
            .iter()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix("KAFKA_SETTING_")?;
                Some((key.to_ascii_lowercase().replace('_', "."), value.clone()))
            })
            .collect();
        self.env_settings.sort();
    }
}

impl KafkaArgs {
    /// Every extra librdkafka setting: `KAFKA_SETTING_*` variables first, flags after (flags win).
    pub fn extra_settings(&self) -> Vec<(String, String)> {
        [self.env_settings.as_slice(), self.kafka_settings.as_slice()].concat()
    }

    /// The settings as they may be logged: values of secret-looking keys masked.
    pub fn masked(&self) -> String {
        let extra: Vec<String> = self
            .extra_settings()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", if is_secret(&k) { "****" } else { v.as_str() }))
            .collect();
        format!(
            "kafka_bootstrap_servers={} kafka_topic={} kafka_settings=[{}]",
            self.kafka_bootstrap_servers,
            self.kafka_topic,
            extra.join(", ")
        )
    }

    /// Values of secret-looking settings, for [`redact`]: librdkafka's
    /// configuration errors quote the value they refuse.
    pub fn secret_values(&self) -> Vec<String> {
        self.extra_settings()
            .into_iter()
            .filter(|(k, v)| is_secret(k) && !v.is_empty())
            .map(|(_, v)| v)
            .collect()
    }
}

/// librdkafka settings whose value is a secret: sasl.password,
/// ssl.key.password, ssl.key.pem, sasl.oauthbearer.client.secret,
/// sasl.oauthbearer.config, sasl.jaas.config, ...
fn is_secret(key: &str) -> bool {
    [
        "password",
        "secret",
        "key",
        "token",
        "jaas",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// `text` with every secret value replaced by `****`: for error lines that
/// quote a library's message, which may quote a setting.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "****")
        })
}

/// Logs to stderr. `LOG_FORMAT=text` (the default) prints lines for people,
/// with colours only when stderr is a terminal; `LOG_FORMAT=json` prints each
/// event as one JSON object (`timestamp`, `level`, `target`, `fields`) for log
/// shippers. `RUST_LOG` filters; `default_filter` applies without it. Any
/// other `LOG_FORMAT` ends the process with exit code 2 and one line.
pub fn init_logging(program: &str, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match std::env::var("LOG_FORMAT").as_deref() {
        Err(_) | Ok("") | Ok("text") => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Ok("json") => logs
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        Ok(other) => {
            eprintln!("{program}: LOG_FORMAT must be `text` or `json`, not `{other}`");
            std::process::exit(2);
        }
    }
}

/// The Delta kernel logs every snapshot it builds, and expected cases such
/// as a table without a log yet (or a version that is not there), as errors.
pub const QUIET_DELTA: &str = "buoyant_kernel=off,deltalake_core=warn";

/// Prints `error` as a binary's last word: `<program>: <its causes>` on one
/// line, with every secret value replaced.
pub fn print_error(program: &str, error: &anyhow::Error, secrets: &[String]) {
    eprintln!("{program}: {}", redact(&error_line(error), secrets));
}

/// The error and its causes joined with ": ", on one line. A cause whose
/// text its parent already quotes is not repeated: library errors often
/// print their source and also return it from `source()`.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = crate::error::one_line(&cause.to_string());
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Parses the command line. A bad flag or variable ends the process with
/// exit code 2 and one line, `<program>: <what is wrong>`, naming the flag
/// (clap's own message runs over several lines with usage and hints);
/// `--help` and `--version` print and exit 0.
pub fn parse_command_line<T: clap::Parser + FromEnvironment>(program: &str) -> T {
    match T::try_parse() {
        Ok(mut args) => {
            let vars: Vec<(String, String)> = std::env::vars().collect();
            args.read_environment(&vars);
            args
        }
        // No subcommand: the help is the answer, but not a success.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            std::process::exit(2);
        }
        Err(e) if e.use_stderr() => {
            eprintln!("{program}: {}", clap_error_line(&e, &T::command()));
            std::process::exit(2);
        }
        Err(e) => {
            let _ = e.print();
            std::process::exit(0);
        }
    }
}

/// clap's message before its usage and hints, on one line, plus the
/// environment variable of the offending flag when the message lacks it.
pub fn clap_error_line(error: &clap::Error, command: &clap::Command) -> String {
    let text = error.to_string();
    let message = text.split("\n\n").next().unwrap_or_default();
    let mut line = crate::error::one_line(message.strip_prefix("error: ").unwrap_or(message));
    let flag = match error.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(arg)) => arg.split([' ', '=']).next(),
        _ => None,
    };
    if let Some(env) = flag.and_then(|flag| env_of(command, flag)) {
        if !line.contains(&env) {
            line.push_str(&format!(" (variable {env})"));
        }
    }
    line
}

/// The environment variable behind `--flag`, in `command` or its subcommands.
fn env_of(command: &clap::Command, flag: &str) -> Option<String> {
    let long = flag.strip_prefix("--")?;
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, flag)))
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Parses `64MiB`, `512KiB`, `10MB`, `1GiB` or a plain number of bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses `5s`, `250ms`, `1m`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?}: {e} (use e.g. 5s, 250ms, 1m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("1234"), Ok(1234));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn settings_parse_and_mask() {
        assert_eq!(parse_setting("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert!(parse_setting("novalue").is_err());
        let args = KafkaArgs {
            kafka_bootstrap_servers: "b:9092".into(),
            kafka_topic: "t".into(),
            kafka_settings: vec![("sasl.password".into(), "hunter2".into())],
            env_settings: Vec::new(),
        };
        assert!(!args.masked().contains("hunter2"));
    }

    #[test]
    fn prefixed_variables_become_settings_that_flags_override() {
        let mut args = KafkaArgs {
            kafka_bootstrap_servers: "b:9092".into(),
            kafka_topic: "t".into(),
            kafka_settings: vec![("sasl.mechanisms".into(), "SCRAM-SHA-512".into())],
            env_settings: Vec::new(),
        };
        args.read_environment(&[
            ("KAFKA_SETTING_SASL_MECHANISMS".into(), "PLAIN".into()),
            ("KAFKA_SETTING_SECURITY_PROTOCOL".into(), "SASL_SSL".into()),
            ("KAFKA_TOPIC".into(), "ignored".into()),
        ]);
        assert_eq!(
            args.extra_settings(),
            [
                ("sasl.mechanisms".to_string(), "PLAIN".to_string()),
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.mechanisms".into(), "SCRAM-SHA-512".into()),
            ]
        );
    }

    #[test]
    fn error_lines_do_not_repeat_a_quoted_cause() {
        let inner = std::io::Error::other("connection refused");
        let outer = crate::error::StoreError::io("reading x", inner);
        let error = anyhow::Error::new(outer).context("loading the checkpoint");
        assert_eq!(
            error_line(&error),
            "loading the checkpoint: reading x: connection refused"
        );
    }

    #[test]
    fn secrets_are_found_and_redacted() {
        let args = KafkaArgs {
            kafka_bootstrap_servers: "b:9092".into(),
            kafka_topic: "t".into(),
            kafka_settings: vec![
                ("sasl.password".into(), "hunter2".into()),
                (
                    "sasl.oauthbearer.config".into(),
                    "clientSecret=abc123".into(),
                ),
                ("ssl.key.password".into(), "pem-pass".into()),
                ("security.protocol".into(), "SASL_SSL".into()),
            ],
            env_settings: Vec::new(),
        };
        let secrets = args.secret_values();
        assert!(secrets.contains(&"hunter2".to_string()), "{secrets:?}");
        assert!(!secrets.contains(&"SASL_SSL".to_string()), "{secrets:?}");
        let masked = args.masked();
        assert!(
            !masked.contains("abc123") && !masked.contains("pem-pass"),
            "{masked}"
        );
        // librdkafka's refusal quotes the value: redact removes it.
        let error = "Client config error: No such configuration property sasl.password hunter2";
        assert_eq!(
            redact(error, &secrets),
            "Client config error: No such configuration property sasl.password ****"
        );
        assert_eq!(redact("nothing", &[String::new()]), "nothing");
    }

    #[derive(clap::Parser, Debug)]
    struct Demo {
        #[arg(long, env = "DEMO_SIZE", value_parser = parse_bytes)]
        size: Option<u64>,
        #[arg(long, env = "DEMO_COUNT", value_name = "N")]
        count: Option<u32>,
    }

    #[test]
    fn clap_errors_become_one_line_naming_flag_and_variable() {
        use clap::{CommandFactory, Parser};
        let line = |args: &[&str]| {
            let e = Demo::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
                .expect_err("refused");
            assert_eq!(e.exit_code(), 2);
            clap_error_line(&e, &Demo::command())
        };
        let size = line(&["--size", "12 parsecs"]);
        assert!(!size.contains('\n') && !size.starts_with("error"), "{size}");
        assert!(
            size.contains("--size") && size.contains("DEMO_SIZE") && size.contains("parsecs"),
            "{size}"
        );
        let count = line(&["--count", "x"]);
        assert!(
            count.contains("--count <N>") && count.ends_with("(variable DEMO_COUNT)"),
            "{count}"
        );
        assert_eq!(line(&["--nope"]), "unexpected argument '--nope' found");
    }
}
