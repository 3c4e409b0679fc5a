//! Settings shared by more than one binary besides the lake's own: Kafka
//! connection settings and human-readable sizes.

/// Kafka settings shared by the producer and consumer (DESIGN §2).
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
}

impl KafkaArgs {
    /// Every extra librdkafka setting: `KAFKA_SETTING_*` variables first, flags after (flags win).
    pub fn extra_settings(&self) -> Vec<(String, String)> {
        let mut settings: Vec<(String, String)> = std::env::vars()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix("KAFKA_SETTING_")?;
                Some((key.to_ascii_lowercase().replace('_', "."), value))
            })
            .collect();
        settings.sort();
        settings.extend(self.kafka_settings.iter().cloned());
        settings
    }

    /// The settings as they may be logged: values of secret-looking keys masked.
    pub fn masked(&self) -> String {
        let extra: Vec<String> = self
            .extra_settings()
            .into_iter()
            .map(|(k, v)| {
                let secret = ["password", "secret", "key", "token", "jaas"]
                    .iter()
                    .any(|s| k.contains(s));
                format!("{k}={}", if secret { "****" } else { v.as_str() })
            })
            .collect();
        format!(
            "kafka_bootstrap_servers={} kafka_topic={} kafka_settings=[{}]",
            self.kafka_bootstrap_servers,
            self.kafka_topic,
            extra.join(", ")
        )
    }
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
        };
        assert!(!args.masked().contains("hunter2"));
    }
}
