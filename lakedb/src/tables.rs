//! Which tables the lake holds, found from its keys alone (docs/DESIGN.md §4),
//! so a session needs no contract:
//!
//! * the consumer's tables ([`discover`]): every directory directly under
//!   `bronze/`, `dead_letters/` and `_contracts/`, plus always `events`, so
//!   an empty lake still has the views it always had; each has a view in
//!   both layers;
//! * the refiner's tables ([`discover_models`]), a separate set: every
//!   directory directly under `silver/` or `gold/` that holds a
//!   `_delta_log/`, since only the log knows their columns.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use futures::TryStreamExt;
use lake::contract::Contract;
use lake::layout::{BRONZE, CONTRACTS, DEAD_LETTERS, EVENTS};
use lake::Lake;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::snapshot;
use crate::views::Layer;

/// Table name → the key of its newest stored contract
/// (`_contracts/<table>/v<N>.schema.json` with the highest N), if any.
pub type Tables = BTreeMap<String, Option<String>>;

/// The refiner's tables: (`Layer::Silver` or `Layer::Gold`, model name).
pub type Models = BTreeSet<(Layer, String)>;

/// Lower case letters, digits and `_`, starting with a letter: what the
/// consumer accepts as a table name. Anything else under the prefixes (a
/// stray file, `_probes`) is not a table.
pub fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub async fn discover(lake: &Lake) -> anyhow::Result<Tables> {
    let mut tables = Tables::new();
    tables.insert(EVENTS.to_string(), None);
    for prefix in [BRONZE, DEAD_LETTERS] {
        let folders = lake
            .folders(prefix)
            .await
            .with_context(|| format!("cannot list the tables under {}/", lake.url_of(prefix)))?;
        for name in folders.into_iter().filter(|n| is_table_name(n)) {
            tables.entry(name).or_default();
        }
    }
    // Listed in full rather than by directory: the contracts are few, and
    // one listing gives both the tables and their newest versions.
    let contracts: Vec<ObjectMeta> = lake
        .store
        .list(Some(&Lake::path(CONTRACTS)))
        .try_collect()
        .await
        .with_context(|| {
            format!(
                "cannot list the contracts under {}/",
                lake.url_of(CONTRACTS)
            )
        })?;
    let mut versions: BTreeMap<String, u32> = BTreeMap::new();
    for meta in contracts {
        let key = meta.location.to_string();
        let Some((table, version)) = contract_version(&key) else {
            continue;
        };
        let stored = tables.entry(table.to_string()).or_default();
        // Versions compare as numbers: v10 is newer than v9.
        if let Some(version) = version {
            if versions.get(table).is_none_or(|v| version > *v) {
                versions.insert(table.to_string(), version);
                *stored = Some(key.clone());
            }
        }
    }
    Ok(tables)
}

/// Every directory directly under `silver/` and `gold/` whose name is a table
/// name and that holds a `_delta_log/`.
pub async fn discover_models(lake: &Lake) -> anyhow::Result<Models> {
    let mut models = Models::new();
    for layer in Layer::MODELS {
        let prefix = layer.schema();
        let folders = lake
            .folders(prefix)
            .await
            .with_context(|| format!("cannot list the tables under {}/", lake.url_of(prefix)))?;
        for name in folders.into_iter().filter(|n| is_table_name(n)) {
            let has_log = snapshot::has_log(lake, &layer.prefix(&name))
                .await
                .with_context(|| {
                    format!("cannot look for the Delta log of {}", layer.view(&name))
                })?;
            if has_log {
                models.insert((layer, name));
            }
        }
    }
    Ok(models)
}

/// `_contracts/<table>/v<N>.schema.json` → (table, Some(N)); another file
/// in a table's directory → (table, None): the table exists, that file is
/// no contract.
fn contract_version(key: &str) -> Option<(&str, Option<u32>)> {
    let mut parts = key.strip_prefix(CONTRACTS)?.strip_prefix('/')?.split('/');
    let table = parts.next().filter(|t| is_table_name(t))?;
    let version = parts
        .next()
        .filter(|_| parts.next().is_none())
        .and_then(|file| file.strip_prefix('v')?.strip_suffix(".schema.json"))
        .and_then(|n| n.parse().ok());
    Some((table, version))
}

/// The stored contract at `key`, or why it cannot be used (one line). A
/// failed read is an error like a failed listing; a bad contract is not.
pub async fn read_contract(lake: &Lake, key: &str) -> anyhow::Result<Result<Contract, String>> {
    let bytes = async { lake.store.get(&Lake::path(key)).await?.bytes().await }
        .await
        .with_context(|| format!("cannot read {}", lake.url_of(key)))?;
    Ok(Contract::parse(key, &bytes).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers() {
        for name in ["events", "orders", "sensor_readings", "t2"] {
            assert!(is_table_name(name), "{name}");
        }
        for name in ["", "_probes", "Orders", "2t", "a-b", "a.json", "é"] {
            assert!(!is_table_name(name), "{name}");
        }
    }

    #[test]
    fn contract_keys_name_table_and_version() {
        assert_eq!(
            contract_version("_contracts/orders/v12.schema.json"),
            Some(("orders", Some(12)))
        );
        assert_eq!(
            contract_version("_contracts/orders/notes.txt"),
            Some(("orders", None))
        );
        assert_eq!(
            contract_version("_contracts/orders/old/v1.schema.json"),
            Some(("orders", None))
        );
        assert_eq!(contract_version("_contracts/_tmp/v1.schema.json"), None);
        assert_eq!(contract_version("_contracts/readme.md"), None);
    }
}
