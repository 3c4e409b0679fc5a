//! The tables one consumer ingests: the contracts named by `--contract` /
//! `CONTRACTS` (files, or directories of `*.schema.json`), or the built-in
//! events contract when none is named; and the contract in force, stored in
//! the lake as `_contracts/<table>/v<N>.schema.json` (docs/DESIGN.md §12).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use lake::contract::{check_tables, incompatible_change, Contract};
use lake::decoder::Decoder;
use lake::layout;
use lake::position::Intent;
use lake::{Lake, StoreError};
use object_store::{ObjectStoreExt, PutPayload};
use tracing::info;

use crate::retry::{retry, Attempts};

/// Compiles every contract named by `paths`, in the order given (a
/// directory's files in name order), and checks that they can be ingested
/// together. The error is one line naming the setting, the file and where in it.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Contract>, String> {
    if paths.is_empty() {
        return Ok(vec![Contract::events()]);
    }
    let fail = |e: &dyn std::fmt::Display| format!("CONTRACTS (--contract): {e}");
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(schema_files(path).map_err(|e| fail(&e))?);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(fail(&"no *.schema.json file in the directories given"));
    }
    let contracts = files
        .iter()
        .map(|f| Contract::load(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&e))?;
    check_tables(&contracts).map_err(|e| fail(&e))?;
    Ok(contracts)
}

/// Stores `contract` as the one in force for its table and version, unless
/// the lake says it cannot be: a newer version is stored already, or the
/// stored contract of the same version differs from this one in the table's
/// shape (then a version bump is needed). A compatible edit replaces the
/// stored one. The error is one line naming the file and the change.
pub async fn store(lake: &Lake, contract: &Contract) -> anyhow::Result<()> {
    let table = &contract.table;
    let refuse = |why: String| {
        anyhow::anyhow!(
            "CONTRACTS (--contract): contract {}: table {} version {}: {why}",
            contract.file,
            table.table,
            table.version
        )
    };
    let versions = retry("listing stored contracts", Attempts::AtMost(5), || {
        stored_versions(lake, &table.table)
    })
    .await?;
    if let Some(newer) = versions
        .iter()
        .copied()
        .filter(|v| *v > table.version)
        .max()
    {
        return Err(refuse(format!(
            "the lake holds version {newer} already ({}): use that contract or a newer one",
            lake.url_of(&layout::contract_key(&table.table, newer))
        )));
    }
    let key = layout::contract_key(&table.table, table.version);
    let stored = retry("reading the stored contract", Attempts::AtMost(5), || {
        read(lake, &key)
    })
    .await?;
    match stored {
        Some(text) if text == contract.text => return Ok(()),
        Some(text) => {
            let old = Contract::parse(&lake.url_of(&key), text.as_bytes())
                .map_err(|e| refuse(format!("the stored contract does not compile: {e}")))?;
            if let Some(change) = incompatible_change(&old, contract) {
                return Err(refuse(format!(
                    "{change} since the stored contract {}; an incompatible change needs \"x-lakehouse\": {{\"version\": {}}}",
                    lake.url_of(&key),
                    table.version + 1
                )));
            }
            info!(table = %table.table, version = table.version, "the contract changed compatibly; the new rules apply from now on");
        }
        None => {
            info!(table = %table.table, version = table.version, key, "storing the contract in force")
        }
    }
    // The copy by fingerprint first: an intent may name it as soon as the
    // contract is in force.
    let history = layout::contract_history_key(&table.table, &contract.fingerprint());
    for key in [&history, &key] {
        retry("storing the contract", Attempts::AtMost(5), || async {
            lake.store
                .put(
                    &Lake::path(key),
                    PutPayload::from(contract.text.clone().into_bytes()),
                )
                .await
                .map(|_| ())
                .map_err(|e| StoreError::request(format!("writing {}", lake.url_of(key)), e))
        })
        .await?;
    }
    Ok(())
}

/// The decoder to replay an open intent with: the table's, unless the
/// intent was decoded under another contract (changed compatibly since),
/// which is then read from the lake, so the replay applies the same rules
/// as the first attempt (docs/DESIGN.md §5).
pub async fn replay_decoder(
    lake: &Lake,
    table: &Arc<Decoder>,
    intent: &Intent,
) -> anyhow::Result<Arc<Decoder>> {
    match &intent.contract {
        Some(fingerprint) => decoder_of(lake, table, fingerprint).await,
        None => Ok(table.clone()),
    }
}

/// The decoder of the contract with `fingerprint`: the table's own, or the
/// copy the lake keeps of an earlier one (`_contracts/<table>/history/`).
pub async fn decoder_of(
    lake: &Lake,
    table: &Arc<Decoder>,
    fingerprint: &str,
) -> anyhow::Result<Arc<Decoder>> {
    if fingerprint == table.fingerprint {
        return Ok(table.clone());
    }
    let key = layout::contract_history_key(&table.contract.table.table, fingerprint);
    let text = retry("reading an earlier contract", Attempts::AtMost(5), || {
        read(lake, &key)
    })
    .await?
    .ok_or_else(|| {
        anyhow::anyhow!(
            "the work left open was decoded under contract {fingerprint}, but {} is missing",
            lake.url_of(&key)
        )
    })?;
    let contract = Contract::parse(&lake.url_of(&key), text.as_bytes())?;
    info!(table = %contract.table.table, fingerprint, "replaying under the contract the work left open was decoded with");
    Ok(Arc::new(Decoder::new(contract)))
}

/// The versions stored under `_contracts/<table>/`.
async fn stored_versions(lake: &Lake, table: &str) -> Result<Vec<u32>, StoreError> {
    let prefix = format!("{}/{table}", layout::CONTRACTS);
    let keys: Vec<String> = lake
        .store
        .list(Some(&Lake::path(&prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .map_err(|e| StoreError::request(format!("listing {}", lake.url_of(&prefix)), e))?;
    Ok(keys
        .iter()
        .filter_map(|key| {
            let name = key.rsplit('/').next()?;
            name.strip_prefix('v')?
                .strip_suffix(".schema.json")?
                .parse()
                .ok()
        })
        .collect())
}

async fn read(lake: &Lake, key: &str) -> Result<Option<String>, StoreError> {
    match lake.store.get(&Lake::path(key)).await {
        Ok(result) => {
            let bytes = result
                .bytes()
                .await
                .map_err(|e| StoreError::request(format!("reading {}", lake.url_of(key)), e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(StoreError::request(
            format!("reading {}", lake.url_of(key)),
            e,
        )),
    }
}

/// The `*.schema.json` files directly in `dir`, sorted by name.
fn schema_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(".schema.json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
    }

    #[test]
    fn a_directory_gives_its_contracts_in_name_order() {
        let tables: Vec<String> = load(&[shipped()])
            .expect("the shipped contracts load together")
            .into_iter()
            .map(|c| c.table.table)
            .collect();
        assert_eq!(tables, ["clicks", "events", "orders", "sensor_readings"]);
        let default = load(&[]).expect("built in");
        assert_eq!(default[0].table.table, "events");
    }

    #[test]
    fn errors_name_the_setting_and_the_file() {
        let events = shipped().join("events.schema.json");
        let twice = load(&[events.clone(), events]).expect_err("same table twice");
        assert!(
            twice.starts_with("CONTRACTS (--contract): contract ")
                && twice.contains("events.schema.json")
                && twice.contains("/x-lakehouse/table"),
            "{twice}"
        );
        let missing = load(&[PathBuf::from("/nonexistent/x.schema.json")]).expect_err("missing");
        assert!(missing.contains("/nonexistent/x.schema.json"), "{missing}");
        assert!(!missing.contains('\n'));
    }

    /// The first start stores the contract; a compatible edit replaces it;
    /// an incompatible one under the same version, or an older version, is
    /// refused with the file and the change named.
    #[tokio::test]
    async fn the_contract_in_force_is_stored_and_guarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(&lake::LakeArgs {
            lake_url: dir.path().display().to_string(),
            ..Default::default()
        })
        .expect("local lake");
        let text = |version: u32, amount: &str| {
            lake::contract::EVENTS_CONTRACT
                .replace("\"version\": 1", &format!("\"version\": {version}"))
                .replace(
                    "\"page\": {\n      \"type\": \"string\"",
                    &format!("\"page\": {{\n      \"type\": \"{amount}\""),
                )
        };
        let contract = |version, page_type| {
            Contract::parse("events.schema.json", text(version, page_type).as_bytes())
                .expect("compiles")
        };
        let stored = dir.path().join("_contracts/events/v1.schema.json");
        store(&lake, &contract(1, "string"))
            .await
            .expect("first start");
        assert_eq!(
            std::fs::read_to_string(&stored).expect("stored"),
            text(1, "string")
        );
        store(&lake, &contract(1, "string"))
            .await
            .expect("same contract");
        let retyped = store(&lake, &contract(1, "integer"))
            .await
            .expect_err("a type change");
        let message = retyped.to_string();
        assert!(
            message.contains("events.schema.json")
                && message.contains("field `page` changed from string to integer")
                && message.contains("\"version\": 2")
                && !message.contains('\n'),
            "{message}"
        );
        store(&lake, &contract(2, "integer"))
            .await
            .expect("a new version");
        let older = store(&lake, &contract(1, "string"))
            .await
            .expect_err("older than the lake");
        assert!(older.to_string().contains("holds version 2"), "{older}");
    }
}
