//! One in-memory DuckDB connection with the lake's schemas and views.
//!
//! How the views reach the files depends on the lake: a local lake is read in
//! place; an S3 lake through httpfs when it loads, else through the local
//! mirror (docs/DESIGN.md §6). [`Session::refresh`] re-discovers the tables
//! and re-checks which have files, so a table created later gets its views
//! and a view that started as the empty placeholder picks up data written
//! later; the shell calls it before every statement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use duckdb::Connection;
use lake::contract::Contract;
use lake::layout::{CONTRACTS, EVENTS};
use lake::store::Location;
use lake::Lake;

use crate::mirror::Mirror;
use crate::tables::{self, Tables};
use crate::views::{self, literal, Layer};

/// `INSTALL httpfs` downloads from the internet; offline it must not hang.
const INSTALL_DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Options {
    /// A local `httpfs.duckdb_extension` to LOAD before trying the installed one.
    pub httpfs_extension: Option<PathBuf>,
    /// Where mirrors of S3 lakes live.
    pub mirror_dir: PathBuf,
    /// Read an S3 lake through the mirror even if httpfs would load.
    pub mirror: bool,
}

/// How the views reach the lake's files.
#[derive(Debug, Clone)]
pub enum Access {
    Local { root: PathBuf },
    Httpfs,
    Mirror(Mirror),
}

pub struct Session {
    pub conn: Connection,
    pub lake: Lake,
    pub access: Access,
    rt: tokio::runtime::Runtime,
    /// The setup SQL run so far, as run and with the secret key redacted, for `init-sql`.
    setup: Vec<(String, String)>,
    /// The tables found by the last refresh.
    tables: Tables,
    /// Per table and layer: the view in place.
    views: BTreeMap<(String, Layer), View>,
}

/// What a view was built from; it is rebuilt when that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Basis {
    Files,
    /// No files yet: a placeholder typed by the stored contract at this key,
    /// or, without one, by the built-in schema (`events`, dead letters).
    Empty {
        contract: Option<String>,
    },
}

struct View {
    basis: Basis,
    /// The SQL in place; `None`: no view, because there is nothing to type
    /// the placeholder with (a table without files and without a usable
    /// stored contract).
    sql: Option<String>,
}

impl Session {
    pub fn open(lake: Lake, options: &Options) -> anyhow::Result<Session> {
        let mut session = Session::connect(lake)?;
        session.access = session.choose_access(options)?;
        session.define_views(&options.mirror_dir)?;
        Ok(session)
    }

    /// The runtime and an in-memory DuckDB with the schemas, views not yet
    /// defined.
    fn connect(lake: Lake) -> anyhow::Result<Session> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let conn =
            Connection::open_in_memory().context("cannot open an in-memory DuckDB database")?;
        let mut session = Session {
            conn,
            access: Access::Httpfs,
            rt,
            setup: Vec::new(),
            tables: Tables::new(),
            views: BTreeMap::new(),
            lake,
        };
        session.run_setup(views::SCHEMAS, views::SCHEMAS)?;
        Ok(session)
    }

    fn choose_access(&mut self, options: &Options) -> anyhow::Result<Access> {
        match self.lake.location.clone() {
            Location::Local { root } => {
                if options.mirror {
                    eprintln!("inspector: note: LAKE_URL is a local directory, read in place; --mirror ignored");
                }
                Ok(Access::Local { root })
            }
            Location::S3 { bucket, prefix } => {
                self.ensure_bucket(&bucket)?;
                let mirror = Mirror::new(&options.mirror_dir, &bucket, &prefix);
                if options.mirror {
                    return Ok(Access::Mirror(mirror));
                }
                Ok(self.httpfs_or_mirror(mirror, options.httpfs_extension.as_deref()))
            }
        }
    }

    /// Fails fast, naming the endpoint or bucket, before DuckDB or the
    /// mirror would retry for minutes.
    fn ensure_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let exists = self
            .rt
            .block_on(self.lake.bucket_exists())
            .map_err(|e| anyhow!(e))?;
        anyhow::ensure!(
            exists,
            "bucket {bucket:?} (LAKE_URL {}) does not exist at {}",
            self.lake.args.lake_url,
            self.lake.endpoint()
        );
        Ok(())
    }

    /// httpfs if it loads, else `mirror`, with a warning saying why.
    fn httpfs_or_mirror(&mut self, mirror: Mirror, extension: Option<&Path>) -> Access {
        match self.try_httpfs(extension) {
            Ok(()) => Access::Httpfs,
            Err(why) => {
                eprintln!(
                    "inspector: warning: httpfs unavailable ({why}); reading {} through the local mirror {}",
                    self.lake.args.lake_url,
                    mirror.root.display()
                );
                Access::Mirror(mirror)
            }
        }
    }

    /// The first [`Session::refresh`], which also proves the access works.
    fn define_views(&mut self, mirror_dir: &Path) -> anyhow::Result<()> {
        let Err(e) = self.refresh() else {
            return Ok(());
        };
        // httpfs loaded but cannot read the lake, while the object store
        // can (ensure_bucket passed): the mirror still works.
        if !matches!(self.access, Access::Httpfs) {
            return Err(e);
        }
        let Location::S3 { bucket, prefix } = self.lake.location.clone() else {
            return Err(e);
        };
        let mirror = Mirror::new(mirror_dir, &bucket, &prefix);
        eprintln!(
            "inspector: warning: httpfs cannot read the lake ({}); reading it through the local mirror {}",
            first_line(&format!("{e:#}")),
            mirror.root.display()
        );
        self.access = Access::Mirror(mirror);
        // Views made before the failure read through httpfs.
        self.views.clear();
        self.refresh()
    }

    /// Loads httpfs and creates the S3 secret; the error lists every attempt.
    fn try_httpfs(&mut self, extension: Option<&Path>) -> Result<(), String> {
        let mut failures = Vec::new();
        let mut attempts = Vec::new();
        if let Some(path) = extension {
            attempts.push(format!("LOAD {};", literal(&path.display().to_string())));
        }
        attempts.push("LOAD httpfs;".to_string());
        let mut loaded = None;
        for sql in attempts {
            match self.conn.execute_batch(&sql) {
                Ok(()) => {
                    loaded = Some(sql);
                    break;
                }
                Err(e) => failures.push(format!(
                    "{}: {}",
                    sql.trim_end_matches(';'),
                    first_line(&e.to_string())
                )),
            }
        }
        let loaded = match loaded {
            Some(sql) => sql,
            None => match self.install_httpfs() {
                Ok(()) => "INSTALL httpfs;\nLOAD httpfs;".to_string(),
                Err(e) => {
                    failures.push(format!("INSTALL httpfs: {e}"));
                    return Err(failures.join("; "));
                }
            },
        };
        let load = format!("-- S3 through DuckDB's httpfs extension.\n{loaded}\n");
        self.setup.push((load.clone(), load));
        let real = views::s3_secret(&self.lake.args, true)?;
        let shown = secret_note(&views::s3_secret(&self.lake.args, false)?);
        if let Err(e) = self.conn.execute_batch(&real) {
            // DuckDB may quote the statement back: keep the key out of the message.
            let mut message = first_line(&e.to_string());
            if let Some(secret) = &self.lake.args.aws_secret_access_key {
                message = message.replace(secret.as_str(), "****");
            }
            return Err(format!("CREATE SECRET: {message}"));
        }
        self.setup.push((real, shown));
        Ok(())
    }

    /// `INSTALL httpfs; LOAD httpfs` with a deadline. The install runs on a
    /// cloned connection in a thread that is abandoned (and interrupted) if
    /// the download stalls, so an offline machine waits at most the deadline.
    fn install_httpfs(&self) -> Result<(), String> {
        let clone = self.conn.try_clone().map_err(|e| e.to_string())?;
        let interrupt = clone.interrupt_handle();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let result = clone
                .execute_batch("INSTALL httpfs;")
                .map_err(|e| first_line(&e.to_string()));
            let _ = tx.send(result);
        });
        match rx.recv_timeout(INSTALL_DEADLINE) {
            Ok(Ok(())) => self
                .conn
                .execute_batch("LOAD httpfs;")
                .map_err(|e| first_line(&e.to_string())),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                interrupt.interrupt();
                Err(format!("no answer within {}s", INSTALL_DEADLINE.as_secs()))
            }
        }
    }

    fn run_setup(&mut self, sql: &str, shown: &str) -> anyhow::Result<()> {
        self.conn
            .execute_batch(sql)
            .with_context(|| format!("DuckDB refused the setup SQL {:?}", first_line(shown)))?;
        self.setup.push((sql.to_string(), shown.to_string()));
        Ok(())
    }

    /// Where the views read a lake-relative key.
    pub fn url_of(&self, key: &str) -> String {
        match &self.access {
            Access::Local { root } => root.join(key).display().to_string(),
            Access::Httpfs => self.lake.url_of(key),
            Access::Mirror(mirror) => mirror.root.join(key).display().to_string(),
        }
    }

    /// Syncs the mirror (if any), finds the tables, and points each view at
    /// its files, or at the empty placeholder while a table has none.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        if let Access::Mirror(mirror) = &self.access {
            let stats = self.rt.block_on(mirror.sync(&self.lake))?;
            if stats.downloaded > 0 || stats.deleted > 0 {
                eprintln!(
                    "inspector: mirror {}: {} objects ({} downloaded, {} deleted)",
                    mirror.root.display(),
                    stats.objects,
                    stats.downloaded,
                    stats.deleted
                );
            }
        }
        let tables = self.rt.block_on(tables::discover(&self.lake))?;
        // A table whose every object was deleted: a view over no files would fail.
        let gone: Vec<(String, Layer)> = self
            .views
            .keys()
            .filter(|(table, _)| !tables.contains_key(table))
            .cloned()
            .collect();
        for (table, layer) in gone {
            self.drop_view(&table, layer)?;
            self.views.remove(&(table, layer));
        }
        for (table, contract) in &tables {
            for layer in Layer::ALL {
                self.refresh_view(table, layer, contract.as_deref())?;
            }
        }
        self.tables = tables;
        Ok(())
    }

    fn refresh_view(
        &mut self,
        table: &str,
        layer: Layer,
        contract: Option<&str>,
    ) -> anyhow::Result<()> {
        let files = self.url_of(&layer.files_key(table));
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM glob(?)", [files.as_str()], |row| {
                row.get(0)
            })
            .with_context(|| format!("cannot list {files}"))?;
        let basis = match layer {
            _ if count > 0 => Basis::Files,
            Layer::Bronze => Basis::Empty {
                contract: contract.map(String::from),
            },
            Layer::DeadLetters => Basis::Empty { contract: None },
        };
        let key = (table.to_string(), layer);
        if self.views.get(&key).is_some_and(|v| v.basis == basis) {
            return Ok(());
        }
        let sql = match &basis {
            Basis::Files => Some(layer.data_view(table, &files)),
            Basis::Empty { contract } => self.placeholder(table, layer, contract.as_deref())?,
        };
        match &sql {
            Some(sql) => self.conn.execute_batch(sql).with_context(|| {
                format!("cannot create the view {} over {files}", layer.view(table))
            })?,
            None => self.drop_view(table, layer)?,
        }
        self.views.insert(key, View { basis, sql });
        Ok(())
    }

    /// The empty view of a table without files, typed by the stored
    /// contract at `contract`, else by the built-in schema; `None` when there
    /// is no usable schema (a one-line warning says why a contract is not).
    fn placeholder(
        &self,
        table: &str,
        layer: Layer,
        contract: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        let view = layer.view(table);
        let schema = match (layer, contract) {
            (Layer::DeadLetters, _) => lake::schema::dead_letters(),
            (Layer::Bronze, Some(key)) => {
                match self.rt.block_on(tables::read_contract(&self.lake, key))? {
                    Ok(contract) => lake::schema::bronze(&contract),
                    Err(why) => {
                        eprintln!("inspector: warning: {why}; no empty view {view}");
                        return Ok(None);
                    }
                }
            }
            (Layer::Bronze, None) if table == EVENTS => lake::schema::bronze(&Contract::events()),
            // Only dead letters so far, and no contract: no columns to give it.
            (Layer::Bronze, None) => return Ok(None),
        };
        match layer.empty_view(table, &schema) {
            Ok(sql) => Ok(Some(sql)),
            Err(why) => {
                eprintln!("inspector: warning: {why}; no empty view {view}");
                Ok(None)
            }
        }
    }

    fn drop_view(&self, table: &str, layer: Layer) -> anyhow::Result<()> {
        let view = layer.view(table);
        self.conn
            .execute_batch(&format!("DROP VIEW IF EXISTS {view};"))
            .with_context(|| format!("cannot drop the view {view}"))
    }

    /// The tables found by the last refresh, by name.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Whether the view of `table` in `layer` exists.
    pub fn has_view(&self, table: &str, layer: Layer) -> bool {
        self.views
            .get(&(table.to_string(), layer))
            .is_some_and(|v| v.sql.is_some())
    }

    /// The SQL that recreates this session's schemas and views in another
    /// DuckDB client; the secret key only `with_secrets`.
    pub fn init_sql(&self, with_secrets: bool) -> String {
        let mut out = format!(
            "-- The lake {} as DuckDB schemas and views; generated by `inspector init-sql`.\n",
            self.lake.args.lake_url
        );
        match &self.access {
            Access::Mirror(mirror) => out.push_str(&format!(
                "-- Reads the local mirror {} (refresh it with `inspector init-sql --mirror`).\n",
                mirror.root.display()
            )),
            Access::Local { .. } | Access::Httpfs => {}
        }
        for (real, shown) in &self.setup {
            out.push('\n');
            out.push_str(if with_secrets { real } else { shown });
        }
        for ((table, layer), view) in &self.views {
            out.push('\n');
            if view.basis != Basis::Files {
                out.push_str(&format!(
                    "-- {} has no files yet under {}: run `inspector init-sql` again once it has.\n",
                    layer.view(table),
                    self.url_of(&layer.files_key(table))
                ));
            }
            match &view.sql {
                Some(sql) => out.push_str(sql),
                None => out.push_str(&format!(
                    "-- No view {}: no usable contract under {}/ to type an empty one.\n",
                    layer.view(table),
                    // Contracts are read from the lake itself, never the mirror.
                    self.lake.url_of(&format!("{CONTRACTS}/{table}"))
                )),
            }
        }
        out
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// One line saying what the views read.
    pub fn describe(&self) -> String {
        match &self.access {
            Access::Local { root } => format!("local lake {}", root.display()),
            Access::Httpfs => format!("{} through httpfs", self.lake.url_of("")),
            Access::Mirror(mirror) => format!(
                "{} through the mirror {}",
                self.lake.url_of(""),
                mirror.root.display()
            ),
        }
    }
}

fn secret_note(shown: &str) -> String {
    if shown.contains(views::SECRET_PLACEHOLDER) {
        format!(
            "-- The secret key is not printed: replace {} with AWS_SECRET_ACCESS_KEY,\n\
             -- or run `inspector init-sql --with-secrets`.\n{shown}",
            views::SECRET_PLACEHOLDER
        )
    } else {
        shown.to_string()
    }
}

pub fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_column(session: &Session, view: &str, column: &str) -> bool {
        let sql = format!("SELECT count(*) FROM (DESCRIBE {view}) WHERE column_name = ?");
        let n: i64 = session
            .conn
            .query_row(&sql, [column], |row| row.get(0))
            .expect("describe");
        n == 1
    }

    #[test]
    fn refresh_follows_tables_and_contract_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let lake = Lake::open(&lake::LakeArgs {
            lake_url: root.display().to_string(),
            ..Default::default()
        })
        .expect("local lake");
        let options = Options {
            httpfs_extension: None,
            mirror_dir: root.join("mirror"),
            mirror: false,
        };
        let mut session = Session::open(lake, &options).expect("session");
        assert_eq!(session.tables().collect::<Vec<_>>(), [EVENTS]);
        assert!(session.has_view(EVENTS, Layer::Bronze));

        let contract = std::fs::read("../contracts/orders.schema.json").expect("contract");
        let mut v2: serde_json::Value = serde_json::from_slice(&contract).expect("json");
        v2["properties"]["note"] = serde_json::json!({"type": "string"});
        let dir_of_orders = root.join(CONTRACTS).join("orders");
        std::fs::create_dir_all(&dir_of_orders).expect("mkdir");
        std::fs::write(dir_of_orders.join("v1.schema.json"), &contract).expect("write");
        session.refresh().expect("refresh");
        assert!(session.has_view("orders", Layer::Bronze));
        assert!(!has_column(&session, "bronze.orders", "note"));

        // A newer version re-types the placeholder.
        std::fs::write(dir_of_orders.join("v2.schema.json"), v2.to_string()).expect("write");
        session.refresh().expect("refresh");
        assert!(has_column(&session, "bronze.orders", "note"));

        // A table whose objects are all gone loses its views.
        std::fs::remove_dir_all(root.join(CONTRACTS)).expect("rm");
        session.refresh().expect("refresh");
        assert!(!session.has_view("orders", Layer::DeadLetters));
        assert!(session
            .conn
            .execute_batch("SELECT * FROM dead_letters.orders")
            .is_err());
    }
}
