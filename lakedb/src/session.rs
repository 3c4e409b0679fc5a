//! One in-memory DuckDB connection with the lake's schemas and views.
//!
//! Every view reads one snapshot of its Delta table (docs/DESIGN.md §6):
//! the newest, or the one [`Options::as_of`] names. Two readers give the
//! same rows and columns:
//!
//! * [`Reader::DeltaScan`]: DuckDB's `delta` extension reads the log itself
//!   (`delta_scan`), when it loads: from [`Options::delta_extension`], else
//!   the installed one, else `INSTALL delta` within a deadline;
//! * [`Reader::FileList`]: the session reads the log ([`crate::snapshot`])
//!   and hands the snapshot's files to `read_parquet`; always available, used
//!   when the extension does not load, through the mirror, and with
//!   [`Options::file_list`], which pins every view to the snapshot whose
//!   version [`Session::version`] reports.
//!
//! How DuckDB reaches the files depends on the lake: a local lake is read in
//! place; an S3 lake through httpfs when it loads, else through the local
//! [`Mirror`] of the snapshots' files. [`Session::refresh`] re-discovers the
//! tables and re-reads each log, rebuilding a view whose snapshot changed
//! (a new version, the first files of a table, a table created later); the
//! inspector's shell calls it before every statement.
//!
//! A table's dead letters are three views (docs/DESIGN.md §6, §15): the
//! Delta table itself as `dead_letters."<t>__written"`, and derived from it
//! ([`views::dead_letter_views`]) `dead_letters.<t>_history` (the rows of
//! normal ingestion and of the visible re-drives, with when, by which
//! re-drive and to where each left) and `dead_letters.<t>` (those that have
//! not left). A re-drive is visible when the bronze snapshot the session
//! reads holds its `txn` ([`snapshot::read_redriven`]), so at every pair of
//! snapshots a record is in exactly one of `bronze.<t>` and
//! `dead_letters.<t>`. Each refresh lists `_redrives/<t>/` once per table and
//! looks up only re-drives it has not seen visible; with none listed the
//! derived views read the dead letters alone.
//!
//! [`Session::define_files_view`] defines a view of any name over some files
//! of a table, with the columns of that table's view (for the refiner's
//! incremental models).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use arrow::datatypes::Schema;
use delta::{AsOf, DataFile};
use duckdb::Connection;
use lake::contract::Contract;
use lake::layout::{CONTRACTS, EVENTS};
use lake::store::Location;
use lake::Lake;

use crate::mirror::Mirror;
use crate::snapshot::{self, Snapshot};
use crate::tables::{self, Models, Tables};
use crate::views::{self, literal, Layer};

/// `INSTALL <extension>` downloads from the internet; offline it must not hang.
const INSTALL_DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Options {
    /// A local `httpfs.duckdb_extension` to LOAD before trying the installed one.
    pub httpfs_extension: Option<PathBuf>,
    /// A local `delta.duckdb_extension` to LOAD before trying the installed one.
    pub delta_extension: Option<PathBuf>,
    /// Where mirrors of S3 lakes live.
    pub mirror_dir: PathBuf,
    /// Read an S3 lake through the mirror even if httpfs would load.
    pub mirror: bool,
    /// Build every view from the snapshot's file list, never `delta_scan`.
    pub file_list: bool,
    /// The snapshot every view reads.
    pub as_of: AsOf,
    /// The program named at the start of the warnings the session prints
    /// on stderr (`<program>: warning: …`).
    pub program: &'static str,
}

impl Options {
    /// The defaults for a lake: newest snapshots, delta_scan where it loads.
    pub fn new(mirror_dir: PathBuf) -> Options {
        Options {
            httpfs_extension: None,
            delta_extension: None,
            mirror_dir,
            mirror: false,
            file_list: false,
            as_of: AsOf::Latest,
            program: "lakedb",
        }
    }
}

/// How the views reach the lake's files.
#[derive(Debug, Clone)]
pub enum Access {
    Local { root: PathBuf },
    Httpfs,
    Mirror(Mirror),
}

/// How a view finds the files of its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// `delta_scan` of the table: DuckDB's delta extension reads the log.
    DeltaScan,
    /// `read_parquet` of the files the session read from the log.
    FileList,
}

pub struct Session {
    pub conn: Connection,
    pub lake: Lake,
    pub access: Access,
    rt: tokio::runtime::Runtime,
    /// The setup SQL run so far, as run and with the secret key redacted, for `init-sql`.
    setup: Vec<(String, String)>,
    /// Whether DuckDB's delta extension is loaded.
    delta_loaded: bool,
    /// How new views are built.
    reader: Reader,
    /// `--file-list`: `init-sql` prints the file lists too.
    file_list: bool,
    as_of: AsOf,
    /// Names the program in warnings.
    program: &'static str,
    /// The consumer's tables found by the last refresh.
    tables: Tables,
    /// The refiner's tables found by the last refresh.
    models: Models,
    /// Per table and layer: the view in place.
    views: BTreeMap<(String, Layer), View>,
    /// Per table: the re-drives looked up in its bronze snapshot by the last
    /// refresh, so the next one looks up only what it has not seen visible.
    redriven: BTreeMap<String, snapshot::Redriven>,
    /// Per table: the views derived from its dead-letter view.
    derived: BTreeMap<String, Derived>,
}

/// `dead_letters.<t>_history` and `dead_letters.<t>` of one table
/// ([`views::dead_letter_views`]).
struct Derived {
    /// Rebuilt when it changes.
    basis: DerivedBasis,
    /// The SQL in place, also what `init-sql` prints.
    sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DerivedBasis {
    /// The basis of the written dead-letter view.
    dead_letters: Basis,
    /// The basis of `bronze.<t>`, when the views read it.
    bronze: Option<Basis>,
    redriven: views::Redriven,
}

/// What a view was built from; it is rebuilt when that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Basis {
    /// The snapshot at `version`, which has files.
    Snapshot { version: u64, reader: Reader },
    /// No files: a placeholder typed by the table's Delta schema at
    /// `version`, else (no log) by the stored contract at this key, else by
    /// the built-in schema (`events`, dead letters).
    Empty {
        version: Option<u64>,
        contract: Option<String>,
    },
    /// `--as-of` names a snapshot the table does not have: a view that
    /// raises this.
    Unavailable(String),
}

struct View {
    basis: Basis,
    /// The SQL in place; `None`: no view, because there is nothing to type
    /// the placeholder with (a table without files and without a usable
    /// stored contract).
    sql: Option<String>,
    /// What `init-sql` prints for it: the `delta_scan` form of a file-list
    /// view, unless the views read the mirror or `--file-list` was given.
    printed: Option<String>,
}

impl Session {
    pub fn open(lake: Lake, options: &Options) -> anyhow::Result<Session> {
        let mut session = Session::connect(lake, options)?;
        session.access = session.choose_access(options)?;
        if !options.file_list && !matches!(session.access, Access::Mirror(_)) {
            session.load_delta(options.delta_extension.as_deref());
        }
        session.define_views(&options.mirror_dir)?;
        Ok(session)
    }

    /// The runtime and an in-memory DuckDB with the schemas, views not yet
    /// defined.
    fn connect(lake: Lake, options: &Options) -> anyhow::Result<Session> {
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
            delta_loaded: false,
            reader: Reader::FileList,
            file_list: options.file_list,
            as_of: options.as_of,
            program: options.program,
            tables: Tables::new(),
            models: Models::new(),
            views: BTreeMap::new(),
            redriven: BTreeMap::new(),
            derived: BTreeMap::new(),
            lake,
        };
        session.run_setup(views::SCHEMAS, views::SCHEMAS)?;
        Ok(session)
    }

    fn choose_access(&mut self, options: &Options) -> anyhow::Result<Access> {
        match self.lake.location.clone() {
            Location::Local { root } => {
                if options.mirror {
                    eprintln!(
                        "{}: note: LAKE_URL is a local directory, read in place; --mirror ignored",
                        self.program
                    );
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
                    "{}: warning: httpfs unavailable ({why}); reading {} through the local mirror {}",
                    self.program,
                    self.lake.args.lake_url,
                    mirror.root.display()
                );
                Access::Mirror(mirror)
            }
        }
    }

    /// The delta extension, for `delta_scan` views. Without it the views are
    /// file lists, which read the same rows: a note in the log, and a
    /// warning only when the file the user named does not load.
    fn load_delta(&mut self, extension: Option<&Path>) {
        match self.load_extension("delta", extension) {
            Ok(loaded) => {
                let load = format!("-- Delta tables through DuckDB's delta extension.\n{loaded}\n");
                self.setup.push((load.clone(), load));
                self.delta_loaded = true;
                self.reader = Reader::DeltaScan;
            }
            Err(why) if extension.is_some() => eprintln!(
                "{}: warning: the delta extension is unavailable ({why}); \
                 the views read the files the Delta logs list",
                self.program
            ),
            Err(why) => tracing::info!(
                %why,
                "the delta extension is unavailable; the views read the files the Delta logs list"
            ),
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
            "{}: warning: httpfs cannot read the lake ({}); reading it through the local mirror {}",
            self.program,
            first_line(&format!("{e:#}")),
            mirror.root.display()
        );
        self.access = Access::Mirror(mirror);
        self.reader = Reader::FileList;
        // Views made before the failure read through httpfs.
        self.views.clear();
        self.derived.clear();
        self.refresh()
    }

    /// Loads httpfs and creates the S3 secret; the error lists every attempt.
    fn try_httpfs(&mut self, extension: Option<&Path>) -> Result<(), String> {
        let loaded = self.load_extension("httpfs", extension)?;
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

    /// Loads the extension `name`: from the file `extension`, else the
    /// installed one, else `INSTALL` within [`INSTALL_DEADLINE`]. Returns the
    /// SQL that worked; the error lists every attempt.
    fn load_extension(&self, name: &str, extension: Option<&Path>) -> Result<String, String> {
        let mut failures = Vec::new();
        let mut attempts = Vec::new();
        if let Some(path) = extension {
            attempts.push(format!("LOAD {};", literal(&path.display().to_string())));
        }
        attempts.push(format!("LOAD {name};"));
        for sql in attempts {
            match self.conn.execute_batch(&sql) {
                Ok(()) => return Ok(sql),
                Err(e) => failures.push(format!(
                    "{}: {}",
                    sql.trim_end_matches(';'),
                    first_line(&e.to_string())
                )),
            }
        }
        match self.install_extension(name) {
            Ok(()) => Ok(format!("INSTALL {name};\nLOAD {name};")),
            Err(e) => {
                failures.push(format!("INSTALL {name}: {e}"));
                Err(failures.join("; "))
            }
        }
    }

    /// `INSTALL <name>; LOAD <name>` with a deadline. The install runs on a
    /// cloned connection in a thread that is abandoned (and interrupted) if
    /// the download stalls, so an offline machine waits at most the deadline.
    fn install_extension(&self, name: &str) -> Result<(), String> {
        let clone = self.conn.try_clone().map_err(|e| e.to_string())?;
        let interrupt = clone.interrupt_handle();
        let (tx, rx) = mpsc::channel();
        let install = format!("INSTALL {name};");
        std::thread::spawn(move || {
            let result = clone
                .execute_batch(&install)
                .map_err(|e| first_line(&e.to_string()));
            let _ = tx.send(result);
        });
        match rx.recv_timeout(INSTALL_DEADLINE) {
            Ok(Ok(())) => self
                .conn
                .execute_batch(&format!("LOAD {name};"))
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

    /// Syncs the mirror (if any), finds the tables, reads each table's log
    /// and points each view at its snapshot, or at the empty placeholder
    /// while the snapshot has no files.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let tables = self.rt.block_on(tables::discover(&self.lake))?;
        let models = self.rt.block_on(tables::discover_models(&self.lake))?;
        let wanted_views: BTreeSet<(String, Layer)> = tables
            .keys()
            .flat_map(|table| Layer::ALL.map(|layer| (table.clone(), layer)))
            .chain(models.iter().map(|(layer, model)| (model.clone(), *layer)))
            .collect();
        let mut snapshots = Vec::new();
        // Per table: whether it has re-drives, and those its bronze
        // snapshot holds.
        let mut redrives: BTreeMap<String, (bool, BTreeSet<String>)> = BTreeMap::new();
        for (table, layer) in &wanted_views {
            let (prefix, view) = (layer.prefix(table), layer.view(table));
            let snapshot = if *layer == Layer::Bronze {
                let ids = self
                    .rt
                    .block_on(lake::redrive::ids(&self.lake, table))
                    .context("cannot list the re-drives")?;
                let before = self.redriven.get(table).cloned().unwrap_or_default();
                let read =
                    snapshot::read_redriven(&self.lake, &prefix, &view, self.as_of, &ids, &before);
                let (snapshot, redriven) = self.rt.block_on(read)?;
                redrives.insert(table.clone(), (!ids.is_empty(), redriven.visible.clone()));
                self.redriven.insert(table.clone(), redriven);
                snapshot
            } else {
                let read = snapshot::read(&self.lake, &prefix, &view, self.as_of);
                self.rt.block_on(read)?
            };
            snapshots.push((table.clone(), *layer, snapshot));
        }
        self.redriven.retain(|table, _| tables.contains_key(table));
        if let Access::Mirror(mirror) = &self.access {
            let wanted: BTreeSet<String> = snapshots
                .iter()
                .flat_map(|(table, layer, snapshot)| {
                    let prefix = layer.prefix(table);
                    files_of(snapshot)
                        .iter()
                        .map(move |f| format!("{prefix}/{}", f.path))
                })
                .collect();
            let stats = self.rt.block_on(mirror.sync(&self.lake, &wanted))?;
            if stats.downloaded > 0 || stats.deleted > 0 {
                eprintln!(
                    "{}: mirror {}: {} objects ({} downloaded, {} deleted)",
                    self.program,
                    mirror.root.display(),
                    stats.objects,
                    stats.downloaded,
                    stats.deleted
                );
            }
        }
        // A table whose every object was deleted: a view over no files would fail.
        let gone: Vec<(String, Layer)> = self
            .views
            .keys()
            .filter(|key| !wanted_views.contains(*key))
            .cloned()
            .collect();
        let gone_derived: Vec<String> = self
            .derived
            .keys()
            .filter(|table| !tables.contains_key(*table))
            .cloned()
            .collect();
        for table in gone_derived {
            self.drop_derived(&table)?;
            self.derived.remove(&table);
        }
        for (table, layer) in gone {
            self.drop_view(&table, layer)?;
            self.views.remove(&(table, layer));
        }
        for (table, layer, snapshot) in &snapshots {
            let contract = tables.get(table).cloned().flatten();
            self.refresh_view(table, *layer, contract.as_deref(), snapshot)?;
        }
        for (table, (listed, visible)) in redrives {
            self.refresh_derived(&table, listed, visible)?;
        }
        self.tables = tables;
        self.models = models;
        Ok(())
    }

    fn refresh_view(
        &mut self,
        table: &str,
        layer: Layer,
        stored_contract: Option<&str>,
        snapshot: &Snapshot,
    ) -> anyhow::Result<()> {
        let contract = match layer {
            Layer::Bronze => stored_contract.map(String::from),
            Layer::DeadLetters | Layer::Silver | Layer::Gold => None,
        };
        let key = (table.to_string(), layer);
        if layer.is_model() && *snapshot == Snapshot::NoLog {
            // Its log went away since discovery: like a table that is gone
            // (a silver or gold table has no schema but its log's).
            if self.views.remove(&key).is_some() {
                self.drop_view(table, layer)?;
            }
            return Ok(());
        }
        let basis = match snapshot {
            Snapshot::Files { version, files } if !files.is_empty() => Basis::Snapshot {
                version: *version,
                reader: self.reader,
            },
            Snapshot::Files { version, .. } => Basis::Empty {
                version: Some(*version),
                contract,
            },
            Snapshot::NoLog => Basis::Empty {
                version: None,
                contract,
            },
            Snapshot::Unavailable(why) => Basis::Unavailable(why.clone()),
        };
        if self.views.get(&key).is_some_and(|v| v.basis == basis) {
            return Ok(());
        }
        let view = match &basis {
            Basis::Snapshot { version, reader } => {
                match self.data_view(table, layer, *version, *reader, files_of(snapshot)) {
                    Ok(view) => view,
                    // The extension loaded but cannot read this lake: the
                    // file list reads the same snapshot.
                    Err(e) if *reader == Reader::DeltaScan => {
                        eprintln!(
                            "{}: warning: delta_scan cannot read {} ({}); \
                             the views read the files the Delta logs list",
                            self.program,
                            layer.view(table),
                            first_line(&format!("{e:#}"))
                        );
                        self.reader = Reader::FileList;
                        return self.refresh_view(table, layer, stored_contract, snapshot);
                    }
                    Err(e) => return Err(e),
                }
            }
            Basis::Empty { version, contract } => {
                let sql = self.placeholder(table, layer, *version, contract.as_deref())?;
                if let Some(sql) = &sql {
                    self.execute_view(table, layer, sql)?;
                }
                View {
                    basis: basis.clone(),
                    printed: sql.clone(),
                    sql,
                }
            }
            Basis::Unavailable(why) => {
                let sql = layer.unavailable_view(table, why);
                self.execute_view(table, layer, &sql)?;
                View {
                    basis: basis.clone(),
                    printed: Some(sql.clone()),
                    sql: Some(sql),
                }
            }
        };
        if view.sql.is_none() {
            self.drop_view(table, layer)?;
        }
        self.views.insert(key, View { basis, ..view });
        Ok(())
    }

    /// (Re)creates `dead_letters.<table>_history` and `dead_letters.<table>`
    /// over the table's dead-letter view when what they read changed: its
    /// basis, the visible re-drives `visible`, and, when they read it,
    /// bronze's basis. `listed`: `_redrives/<table>/` lists some re-drive.
    /// Bronze is read only when it may hold re-driven rows: some re-drive is
    /// visible, or some is listed and the views read the newest snapshots.
    fn refresh_derived(
        &mut self,
        table: &str,
        listed: bool,
        visible: BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let dead_letters = match self.views.get(&(table.to_string(), Layer::DeadLetters)) {
            Some(View {
                sql: Some(_),
                basis,
                ..
            }) => basis.clone(),
            _ => {
                if self.derived.remove(table).is_some() {
                    self.drop_derived(table)?;
                }
                return Ok(());
            }
        };
        let newest = self.as_of == AsOf::Latest;
        let written = self.view_columns(
            Layer::DeadLetters.schema(),
            &format!("{table}{}", views::WRITTEN),
        )?;
        let has =
            |have: &BTreeSet<String>, columns: &[&str]| columns.iter().all(|c| have.contains(*c));
        let written_columns = has(&written, &views::REDRIVE_COLUMNS);
        let bronze = match self.views.get(&(table.to_string(), Layer::Bronze)) {
            Some(View {
                sql: Some(_),
                basis: basis @ Basis::Snapshot { .. },
                ..
            }) if !visible.is_empty() || (listed && newest) => Some(basis.clone()),
            _ => None,
        };
        let columns: Vec<&str> = views::POSITION_COLUMNS
            .iter()
            .chain(&views::REDRIVE_COLUMNS)
            .copied()
            .collect();
        // A dead-letter view without them raises (no such snapshot).
        let bronze = match bronze {
            Some(basis)
                if has(&written, &views::POSITION_COLUMNS)
                    && has(&self.view_columns(Layer::Bronze.schema(), table)?, &columns) =>
            {
                Some(basis)
            }
            _ => None,
        };
        let basis = DerivedBasis {
            dead_letters,
            redriven: views::Redriven {
                visible,
                written_columns,
                bronze: bronze.is_some(),
                newest,
            },
            bronze,
        };
        if self.derived.get(table).is_some_and(|d| d.basis == basis) {
            return Ok(());
        }
        let sql = views::dead_letter_views(table, &basis.redriven);
        self.conn.execute_batch(&sql).with_context(|| {
            format!(
                "cannot create the views {} and {} over {}",
                views::history_view(table),
                Layer::DeadLetters.view(table),
                Layer::DeadLetters.raw_view(table)
            )
        })?;
        self.derived
            .insert(table.to_string(), Derived { basis, sql });
        Ok(())
    }

    /// The columns of the view `schema.name` as DuckDB's catalog holds
    /// them: read without binding the view again (no I/O).
    fn view_columns(&self, schema: &str, name: &str) -> anyhow::Result<BTreeSet<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
        )?;
        let columns = stmt
            .query_map([schema, name], |row| row.get::<_, String>(0))?
            .collect::<Result<BTreeSet<_>, _>>()
            .with_context(|| format!("cannot read the columns of {schema}.{name}"))?;
        Ok(columns)
    }

    fn drop_derived(&self, table: &str) -> anyhow::Result<()> {
        let (current, history) = (Layer::DeadLetters.view(table), views::history_view(table));
        self.conn
            .execute_batch(&format!(
                "DROP VIEW IF EXISTS {current};\nDROP VIEW IF EXISTS {history};"
            ))
            .with_context(|| format!("cannot drop the views {current} and {history}"))
    }

    /// Creates the view of a snapshot with files.
    fn data_view(
        &self,
        table: &str,
        layer: Layer,
        version: u64,
        reader: Reader,
        files: &[DataFile],
    ) -> anyhow::Result<View> {
        let pinned = match self.as_of {
            AsOf::Latest => None,
            AsOf::Version(_) | AsOf::Timestamp(_) => Some(version),
        };
        let delta_sql = || -> anyhow::Result<String> {
            let prefix = layer.prefix(table);
            // Every table written through `delta` has event_date; a silver
            // or gold table written by another tool may not.
            let partitioned = !layer.is_model()
                || self
                    .rt
                    .block_on(snapshot::schema(&self.lake, &prefix, version))?
                    .field_with_name(views::PARTITION)
                    .is_ok();
            let url = self.url_of(&prefix);
            Ok(layer.delta_view_of(table, &url, pinned, partitioned))
        };
        let sql = match reader {
            Reader::DeltaScan => delta_sql()?,
            Reader::FileList => {
                self.file_list_sql(&layer.raw_view(table), table, layer, version, files)?
            }
        };
        self.execute_view(table, layer, &sql)?;
        let printed = if self.prints_file_lists() {
            sql.clone()
        } else {
            delta_sql()?
        };
        Ok(View {
            basis: Basis::Snapshot { version, reader },
            sql: Some(sql),
            printed: Some(printed),
        })
    }

    fn execute_view(&self, table: &str, layer: Layer, sql: &str) -> anyhow::Result<()> {
        self.conn.execute_batch(sql).with_context(|| {
            format!(
                "cannot create the view {} over {}",
                layer.raw_view(table),
                self.url_of(&layer.prefix(table))
            )
        })
    }

    /// The file-list view named `view` of `files` of the table at
    /// `version`: the table's columns in its order, whatever columns the
    /// files have.
    fn file_list_sql(
        &self,
        view: &str,
        table: &str,
        layer: Layer,
        version: u64,
        files: &[DataFile],
    ) -> anyhow::Result<String> {
        let prefix = layer.prefix(table);
        let mut paths: Vec<(String, Option<String>)> = files
            .iter()
            .map(|f| {
                let path = self.url_of(&format!("{prefix}/{}", f.path));
                (path, f.event_date.clone())
            })
            .collect();
        paths.sort();
        let list: Vec<String> = paths.iter().map(|(p, _)| literal(p)).collect();
        let in_files = self
            .describe(&format!(
                "SELECT * FROM read_parquet([{}], union_by_name = true)",
                list.join(", ")
            ))
            .with_context(|| format!("cannot read the files of {view}"))?;
        let schema = self
            .rt
            .block_on(snapshot::schema(&self.lake, &prefix, version))?;
        let of_table = self.table_columns(&schema, &in_files)?;
        let columns = views::file_list_columns(layer, &of_table, &in_files);
        Ok(views::file_list_view_named(
            view,
            &self.url_of(&prefix),
            version,
            &columns,
            &paths,
        ))
    }

    /// Creates or replaces the view `view` (any qualified name, such as
    /// `changes.bronze__events`; the caller creates its schema) over exactly
    /// `files` of `table` in `layer`: paths relative to the table's root, as
    /// [`delta::Table::files`] gives them, of the snapshot at `version` or
    /// an older one. Its columns, their order and `event_date` are those of
    /// the file-list view of the table at `version`; no files give a typed
    /// view with zero rows. Through the mirror, the files must be in a
    /// snapshot the last [`Session::refresh`] mirrored.
    pub fn define_files_view(
        &self,
        view: &str,
        layer: Layer,
        table: &str,
        version: u64,
        files: &[DataFile],
    ) -> anyhow::Result<()> {
        let sql = if files.is_empty() {
            let schema =
                self.rt
                    .block_on(snapshot::schema(&self.lake, &layer.prefix(table), version))?;
            layer
                .empty_view_named(view, &schema)
                .map_err(|why| anyhow!(why))?
        } else {
            self.file_list_sql(view, table, layer, version, files)?
        };
        self.conn.execute_batch(&sql).with_context(|| {
            format!(
                "cannot create the view {view} over {} files of {}",
                files.len(),
                self.url_of(&layer.prefix(table))
            )
        })
    }

    /// The columns of `schema` with their DuckDB types as DuckDB spells
    /// them; a column of a type the inspector cannot name takes the files'
    /// type, or is left out if no file has it.
    fn table_columns(
        &self,
        schema: &Schema,
        in_files: &[(String, String)],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut typed = Vec::new();
        let mut casts = Vec::new();
        for field in schema.fields() {
            if let Some(ty) = views::duckdb_type(field.data_type()) {
                casts.push(format!(
                    "CAST(NULL AS {ty}) AS {}",
                    views::identifier(field.name())
                ));
                typed.push(field.name().clone());
            }
        }
        let spelled: BTreeMap<String, String> = if casts.is_empty() {
            BTreeMap::new()
        } else {
            self.describe(&format!("SELECT {}", casts.join(", ")))?
                .into_iter()
                .collect()
        };
        Ok(schema
            .fields()
            .iter()
            .filter_map(|field| {
                let name = field.name();
                let ty = spelled.get(name).cloned().or_else(|| {
                    in_files
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, ty)| ty.clone())
                })?;
                Some((name.clone(), ty))
            })
            .collect())
    }

    /// Column names and types of a query, from DuckDB's `DESCRIBE`.
    fn describe(&self, query: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(&format!("DESCRIBE {query}"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Whether `init-sql` prints the session's file lists rather than
    /// `delta_scan`: through the mirror (the official CLI reads the mirror
    /// as this session does), or when asked to.
    fn prints_file_lists(&self) -> bool {
        self.file_list || matches!(self.access, Access::Mirror(_))
    }

    /// The empty view of a table without files, typed by its Delta schema
    /// at `version`, else by the stored contract at `contract`, else by the
    /// built-in schema; `None` when there is no usable schema (a one-line
    /// warning says why a contract is not).
    fn placeholder(
        &self,
        table: &str,
        layer: Layer,
        version: Option<u64>,
        contract: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        let view = layer.view(table);
        let schema = match (layer, version, contract) {
            (_, Some(version), _) => {
                self.rt
                    .block_on(snapshot::schema(&self.lake, &layer.prefix(table), version))?
            }
            (Layer::DeadLetters, None, _) => lake::schema::dead_letters(),
            (Layer::Bronze, None, Some(key)) => {
                match self.rt.block_on(tables::read_contract(&self.lake, key))? {
                    Ok(contract) => lake::schema::bronze(&contract),
                    Err(why) => {
                        eprintln!("{}: warning: {why}; no empty view {view}", self.program);
                        return Ok(None);
                    }
                }
            }
            (Layer::Bronze, None, None) if table == EVENTS => {
                lake::schema::bronze(&Contract::events())
            }
            // Only dead letters so far, and no contract: no columns to give it.
            (Layer::Bronze, None, None) => return Ok(None),
            // Only the log knows a model's columns.
            (Layer::Silver | Layer::Gold, None, _) => return Ok(None),
        };
        match layer.empty_view(table, &schema) {
            Ok(sql) => Ok(Some(sql)),
            Err(why) => {
                eprintln!("{}: warning: {why}; no empty view {view}", self.program);
                Ok(None)
            }
        }
    }

    fn drop_view(&self, table: &str, layer: Layer) -> anyhow::Result<()> {
        let view = layer.raw_view(table);
        self.conn
            .execute_batch(&format!("DROP VIEW IF EXISTS {view};"))
            .with_context(|| format!("cannot drop the view {view}"))
    }

    /// The consumer's tables found by the last refresh, by name: each has
    /// a view in `bronze` and one in `dead_letters` (unless there is nothing
    /// to type it with yet, see [`Session::has_view`]).
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// The refiner's tables in `layer` (`Layer::Silver` or `Layer::Gold`)
    /// found by the last refresh, by name; none for the consumer's layers.
    pub fn models(&self, layer: Layer) -> impl Iterator<Item = &str> {
        self.models
            .iter()
            .filter(move |(l, _)| *l == layer)
            .map(|(_, model)| model.as_str())
    }

    /// Every view in place, as (table, layer), by table and then layer.
    pub fn views(&self) -> impl Iterator<Item = (&str, Layer)> {
        self.views
            .iter()
            .filter(|(_, view)| view.sql.is_some())
            .map(|((table, layer), _)| (table.as_str(), *layer))
    }

    /// Whether the view of `table` in `layer` exists.
    pub fn has_view(&self, table: &str, layer: Layer) -> bool {
        self.views
            .get(&(table.to_string(), layer))
            .is_some_and(|v| v.sql.is_some())
    }

    /// Whether the view of `table` in `layer` can be read: it exists and is
    /// not the error of a snapshot that does not exist.
    pub fn is_readable(&self, table: &str, layer: Layer) -> bool {
        self.views
            .get(&(table.to_string(), layer))
            .is_some_and(|v| v.sql.is_some() && !matches!(v.basis, Basis::Unavailable(_)))
    }

    /// The Delta version the view of `table` in `layer` reads; `None`
    /// without a log (or without that snapshot).
    pub fn version(&self, table: &str, layer: Layer) -> Option<u64> {
        match &self.views.get(&(table.to_string(), layer))?.basis {
            Basis::Snapshot { version, .. } => Some(*version),
            Basis::Empty { version, .. } => *version,
            Basis::Unavailable(_) => None,
        }
    }

    /// How the views read their snapshots.
    pub fn reader(&self) -> Reader {
        self.reader
    }

    /// The SQL that recreates this session's schemas and views in another
    /// DuckDB client; the secret key only `with_secrets`. The views are
    /// `delta_scan`s, for a client that loads the delta extension, except
    /// through the mirror or with `--file-list`.
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
        if !self.delta_loaded && !self.prints_file_lists() {
            out.push_str(
                "\n-- Delta tables through DuckDB's delta extension (`INSTALL delta;` once, where\n\
                 -- DuckDB can download it), or run `inspector init-sql --file-list`.\nLOAD delta;\n",
            );
        }
        if self.prints_file_lists() {
            out.push_str(
                "\n-- The views list the files of the snapshots as of now: \
                 run `inspector init-sql` again after new commits.\n",
            );
        }
        for ((table, layer), view) in &self.views {
            out.push('\n');
            if let Basis::Empty { .. } = view.basis {
                out.push_str(&format!(
                    "-- {} has no files yet in {}: run `inspector init-sql` again once it has.\n",
                    layer.view(table),
                    self.url_of(&layer.prefix(table))
                ));
            }
            match &view.printed {
                Some(sql) => out.push_str(sql),
                None => out.push_str(&format!(
                    "-- No view {}: no usable contract under {}/ to type an empty one.\n",
                    layer.view(table),
                    // Contracts are read from the lake itself, never the mirror.
                    self.lake.url_of(&format!("{CONTRACTS}/{table}"))
                )),
            }
            // After the views they read: bronze's sorts before.
            if let (Layer::DeadLetters, Some(derived)) = (layer, self.derived.get(table)) {
                out.push('\n');
                out.push_str(&derived.sql);
            }
        }
        out
    }

    /// Runs `future` on the session's runtime (for [`delta`] and
    /// `lake.store` calls from synchronous code).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// One line saying what the views read.
    pub fn describe_access(&self) -> String {
        let mut out = match &self.access {
            Access::Local { root } => format!("local lake {}", root.display()),
            Access::Httpfs => format!("{} through httpfs", self.lake.url_of("")),
            Access::Mirror(mirror) => format!(
                "{} through the mirror {}",
                self.lake.url_of(""),
                mirror.root.display()
            ),
        };
        out.push_str(match self.reader {
            Reader::DeltaScan => ", Delta tables read by delta_scan",
            Reader::FileList => ", Delta tables read as their logs' file lists",
        });
        match self.as_of {
            AsOf::Latest => {}
            AsOf::Version(v) => out.push_str(&format!(", as of version {v}")),
            AsOf::Timestamp(t) => out.push_str(&format!(
                ", as of {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )),
        }
        out
    }
}

/// The files of a snapshot; none for the others.
fn files_of(snapshot: &Snapshot) -> &[DataFile] {
    match snapshot {
        Snapshot::Files { files, .. } => files,
        Snapshot::NoLog | Snapshot::Unavailable(_) => &[],
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
        let options = Options::new(root.join("mirror"));
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
        // Its dead letters have no log: typed by the built-in schema.
        assert!(has_column(&session, "dead_letters.orders", "redriven_at"));
        assert!(has_column(
            &session,
            "dead_letters.orders_history",
            "left_to"
        ));

        // A newer version re-types the placeholder.
        std::fs::write(dir_of_orders.join("v2.schema.json"), v2.to_string()).expect("write");
        session.refresh().expect("refresh");
        assert!(has_column(&session, "bronze.orders", "note"));

        // A table whose objects are all gone loses its views.
        std::fs::remove_dir_all(root.join(CONTRACTS)).expect("rm");
        session.refresh().expect("refresh");
        assert!(!session.has_view("orders", Layer::DeadLetters));
        for view in [
            "dead_letters.orders",
            "dead_letters.orders_history",
            "dead_letters.\"orders__written\"",
        ] {
            assert!(
                session
                    .conn
                    .execute_batch(&format!("SELECT * FROM {view}"))
                    .is_err(),
                "{view} is dropped"
            );
        }
    }
}

/// A local lake with Delta tables written as the consumer and the refiner
/// write them: `delta::Table::open_or_create`, a Parquet file, `append`.
#[cfg(test)]
mod lake_tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    fn local_lake(root: &Path) -> Lake {
        Lake::open(&lake::LakeArgs {
            lake_url: root.display().to_string(),
            ..Default::default()
        })
        .expect("local lake")
    }

    fn open(root: &Path, options: Options) -> Session {
        Session::open(local_lake(root), &options).expect("session")
    }

    fn file_list(root: &Path) -> Options {
        Options {
            file_list: true,
            ..Options::new(root.join("mirror"))
        }
    }

    fn count(session: &Session, sql: &str) -> i64 {
        session
            .conn
            .query_row(sql, [], |row| row.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every row of `view` as text, sorted.
    fn rows(session: &Session, view: &str) -> Vec<String> {
        let sql = format!("SELECT concat_ws('|', *COLUMNS(*)) FROM {view} ORDER BY ALL");
        let mut stmt = session.conn.prepare(&sql).expect("prepare");
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        rows
    }

    fn columns(session: &Session, view: &str) -> Vec<(String, String)> {
        session
            .describe(&format!("SELECT * FROM {view}"))
            .expect("describe")
    }

    fn parquet(batch: &RecordBatch) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
        bytes
    }

    /// Uploads `batch` as `<prefix>/event_date=<date>/<name>.parquet` and
    /// commits it as the next range of the source `test`.
    async fn append(
        lake: &Lake,
        table: &mut delta::Table,
        prefix: &str,
        date: &str,
        name: &str,
        batch: &RecordBatch,
    ) -> DataFile {
        let file = upload(lake, prefix, date, name, batch).await;
        let through = table.version() as i64 + 1;
        let committed = table
            .append("test", through, std::slice::from_ref(&file))
            .await
            .expect("commit");
        assert!(matches!(committed, delta::Committed::Version(_)));
        file
    }

    /// Uploads `batch` as `<prefix>/event_date=<date>/<name>.parquet`.
    async fn upload(
        lake: &Lake,
        prefix: &str,
        date: &str,
        name: &str,
        batch: &RecordBatch,
    ) -> DataFile {
        let bytes = parquet(batch);
        let file = DataFile {
            path: format!("event_date={date}/{name}.parquet"),
            event_date: Some(date.to_string()),
            size: bytes.len() as i64,
            rows: batch.num_rows() as u64,
        };
        lake.store
            .put(
                &Lake::path(&format!("{prefix}/{}", file.path)),
                PutPayload::from(bytes::Bytes::from(bytes)),
            )
            .await
            .expect("put");
        file
    }

    fn numbers(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))])
            .expect("batch")
    }

    fn per_minute(rows: &[(i64, i64)]) -> RecordBatch {
        let schema = per_minute_schema();
        let minutes: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let counts: Vec<i64> = rows.iter().map(|r| r.1).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMicrosecondArray::from(minutes).with_timezone("UTC")),
                Arc::new(Int64Array::from(counts)),
            ],
        )
        .expect("batch")
    }

    fn per_minute_schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new(
                "minute",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("events", DataType::Int64, true),
        ]))
    }

    #[test]
    fn a_files_view_reads_exactly_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let lake = local_lake(root);
        let prefix = Layer::Bronze.prefix("nums");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let files = rt.block_on(async {
            let mut table = delta::Table::open_or_create(&lake, &prefix, &numbers(&[]).schema())
                .await
                .expect("create");
            let mut files = Vec::new();
            for (i, (date, values)) in [
                ("2026-01-01", &[1, 2][..]),
                ("2026-01-02", &[3, 4, 5][..]),
                ("2026-01-02", &[6][..]),
            ]
            .into_iter()
            .enumerate()
            {
                let batch = numbers(values);
                files
                    .push(append(&lake, &mut table, &prefix, date, &format!("f{i}"), &batch).await);
            }
            files
        });
        let session = open(root, file_list(root));
        let version = session
            .version("nums", Layer::Bronze)
            .expect("bronze.nums has a log");
        assert_eq!(version, 3);
        assert_eq!(count(&session, "SELECT count(*) FROM bronze.nums"), 6);

        session
            .conn
            .execute_batch("CREATE SCHEMA changes;")
            .expect("schema");
        let subset = [files[2].clone(), files[0].clone()];
        session
            .define_files_view(
                "changes.bronze__nums",
                Layer::Bronze,
                "nums",
                version,
                &subset,
            )
            .expect("files view");
        assert_eq!(
            rows(&session, "changes.bronze__nums"),
            ["1|2026-01-01", "2|2026-01-01", "6|2026-01-02"]
        );
        assert_eq!(
            columns(&session, "changes.bronze__nums"),
            columns(&session, "bronze.nums")
        );

        // Redefined over other files: replaced.
        session
            .define_files_view(
                "changes.bronze__nums",
                Layer::Bronze,
                "nums",
                version,
                &files[1..2],
            )
            .expect("files view");
        assert_eq!(
            count(&session, "SELECT sum(n) FROM changes.bronze__nums"),
            12
        );

        // No files: the same columns, no rows.
        session
            .define_files_view("changes.bronze__nums", Layer::Bronze, "nums", version, &[])
            .expect("empty view");
        assert_eq!(
            count(&session, "SELECT count(*) FROM changes.bronze__nums"),
            0
        );
        assert_eq!(
            columns(&session, "changes.bronze__nums"),
            columns(&session, "bronze.nums")
        );
    }

    /// A gold table, seen through both readers, the delta_scan one where
    /// the delta extension of the pip wheel loads.
    #[test]
    fn gold_tables_are_views_with_their_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let lake = local_lake(root);
        let prefix = Layer::Gold.prefix("events_per_minute");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let mut table = rt
            .block_on(delta::Table::open_or_create(
                &lake,
                &prefix,
                &per_minute_schema(),
            ))
            .expect("create");
        // A silver directory without a log is no table; nor is a stray name.
        std::fs::create_dir_all(root.join("silver/pending/event_date=2026-01-01")).expect("mkdir");
        std::fs::create_dir_all(root.join("gold/Not-A-Table/_delta_log")).expect("mkdir");

        // A log without files: a typed view with no rows.
        let mut session = open(root, file_list(root));
        assert_eq!(
            session.models(Layer::Gold).collect::<Vec<_>>(),
            ["events_per_minute"]
        );
        assert_eq!(session.models(Layer::Silver).count(), 0);
        assert_eq!(session.models(Layer::Bronze).count(), 0);
        assert!(session.has_view("events_per_minute", Layer::Gold));
        assert!(!session.has_view("pending", Layer::Silver));
        assert_eq!(session.version("events_per_minute", Layer::Gold), Some(0));
        assert_eq!(
            count(&session, "SELECT count(*) FROM gold.events_per_minute"),
            0
        );
        let expected_columns = [
            ("minute".to_string(), "TIMESTAMP WITH TIME ZONE".to_string()),
            ("events".to_string(), "BIGINT".to_string()),
            ("event_date".to_string(), "DATE".to_string()),
        ];
        assert_eq!(
            columns(&session, "gold.events_per_minute"),
            expected_columns
        );
        // The schema is there in every session, the table is not.
        let err = session
            .conn
            .execute_batch("SELECT * FROM gold.nothing")
            .expect_err("no such table");
        assert!(
            err.to_string().contains("gold.nothing does not exist")
                || err.to_string().contains("nothing does not exist"),
            "{err}"
        );
        assert!(!err.to_string().contains("chema"), "{err}");

        const MINUTE: i64 = 1_767_261_600_000_000; // 2026-01-01T10:00:00Z
        rt.block_on(async {
            let batch = per_minute(&[(MINUTE, 7), (MINUTE + 60_000_000, 3)]);
            append(&lake, &mut table, &prefix, "2026-01-01", "a", &batch).await;
            let batch = per_minute(&[(MINUTE + 86_400_000_000, 5)]);
            append(&lake, &mut table, &prefix, "2026-01-02", "b", &batch).await;
        });
        session.refresh().expect("refresh");
        let expected_rows = [
            "2026-01-01 10:00:00+00|7|2026-01-01",
            "2026-01-01 10:01:00+00|3|2026-01-01",
            "2026-01-02 10:00:00+00|5|2026-01-02",
        ];
        assert_eq!(session.version("events_per_minute", Layer::Gold), Some(2));
        assert_eq!(rows(&session, "gold.events_per_minute"), expected_rows);
        assert_eq!(
            columns(&session, "gold.events_per_minute"),
            expected_columns
        );
        assert!(session
            .views()
            .any(|v| v == ("events_per_minute", Layer::Gold)));
        let printed = session.init_sql(false);
        assert!(
            printed.contains("CREATE OR REPLACE VIEW gold.events_per_minute AS"),
            "{printed}"
        );

        let delta = Session::open(
            local_lake(root),
            &Options {
                delta_extension: Some(testkit::delta_extension().into()),
                ..Options::new(root.join("mirror"))
            },
        )
        .expect("session");
        assert_eq!(delta.reader(), Reader::DeltaScan);
        assert_eq!(rows(&delta, "gold.events_per_minute"), expected_rows);
        assert_eq!(columns(&delta, "gold.events_per_minute"), expected_columns);
        assert!(delta.init_sql(false).contains("FROM delta_scan('"));

        // The table's directory is gone: so is its view.
        std::fs::remove_dir_all(root.join("gold/events_per_minute")).expect("rm");
        session.refresh().expect("refresh");
        assert!(!session.has_view("events_per_minute", Layer::Gold));
        assert_eq!(session.models(Layer::Gold).count(), 0);
        assert!(session
            .conn
            .execute_batch("SELECT * FROM gold.events_per_minute")
            .is_err());
    }

    /// A dead letter or a bronze row of the table `events`: its message (a
    /// Kafka offset of `events` partition 0, or a raw key of the files
    /// source), index, error code (bronze: its `note`) and re-drive.
    #[derive(Debug, Clone, Copy)]
    struct Row {
        offset: Option<i64>,
        key: Option<&'static str>,
        index: Option<i32>,
        code: &'static str,
        redrive: Option<(&'static str, i64)>,
    }

    const RAW_KEY: &str = "raw/events/r/000000001.json";
    /// 2026-01-02T00:00:05Z.
    const INGESTED: i64 = 1_767_312_005_000_000;
    /// When the re-drives 000001, 000002 and 000003 started:
    /// 2026-02-01, 2026-02-02 and 2026-02-03, midnight UTC.
    const T1: i64 = 1_769_904_000_000_000;
    const T2: i64 = T1 + 86_400_000_000;
    const T3: i64 = T2 + 86_400_000_000;

    fn kafka(offset: i64, index: Option<i32>, code: &'static str) -> Row {
        Row {
            offset: Some(offset),
            key: None,
            index,
            code,
            redrive: None,
        }
    }

    fn files(index: i32, code: &'static str) -> Row {
        Row {
            offset: None,
            key: Some(RAW_KEY),
            index: Some(index),
            code,
            redrive: None,
        }
    }

    impl Row {
        fn by(self, id: &'static str, at: i64) -> Row {
            Row {
                redrive: Some((id, at)),
                ..self
            }
        }
    }

    /// The column `name` of `rows`; `None` for one left NULL.
    fn column(name: &str, rows: &[Row]) -> Option<arrow::array::ArrayRef> {
        use arrow::array::{BinaryArray, Int32Array, StringArray};
        let strings = |f: &dyn Fn(&Row) -> Option<String>| -> arrow::array::ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let micros = |f: &dyn Fn(&Row) -> Option<i64>| -> arrow::array::ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            )
        };
        Some(match name {
            "source_kind" => {
                strings(&|r| Some(if r.offset.is_some() { "kafka" } else { "files" }.into()))
            }
            "source_topic" => strings(&|r| r.offset.map(|_| "events".into())),
            "source_partition" => Arc::new(
                rows.iter()
                    .map(|r| r.offset.map(|_| 0))
                    .collect::<Int32Array>(),
            ),
            "source_offset" => Arc::new(rows.iter().map(|r| r.offset).collect::<Int64Array>()),
            "source_key" => strings(&|r| r.key.map(String::from)),
            "batch_id" => strings(&|_| Some("b1".into())),
            "record_index" => Arc::new(rows.iter().map(|r| r.index).collect::<Int32Array>()),
            "ingested_at" => micros(&|_| Some(INGESTED)),
            "contract_version" => Arc::new(rows.iter().map(|_| Some(1)).collect::<Int32Array>()),
            "error_kind" => strings(&|r| {
                Some(
                    if r.index.is_some() {
                        "invalid_record"
                    } else {
                        "corrupt_batch"
                    }
                    .into(),
                )
            }),
            "error_code" | "note" => strings(&|r| Some(r.code.into())),
            "error_message" => strings(&|r| Some(format!("{} here", r.code))),
            "raw_payload" => Arc::new(BinaryArray::from_iter_values(rows.iter().map(|_| b"{}"))),
            "redrive_id" => strings(&|r| r.redrive.map(|(id, _)| id.into())),
            "redriven_at" => micros(&|r| r.redrive.map(|(_, at)| at)),
            _ => return None,
        })
    }

    fn rows_of(schema: &Arc<Schema>, rows: &[Row]) -> RecordBatch {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                column(f.name(), rows)
                    .unwrap_or_else(|| arrow::array::new_null_array(f.data_type(), rows.len()))
            })
            .collect();
        RecordBatch::try_new(schema.clone(), columns).expect("batch")
    }

    /// The bronze table of the tests: a `note`, then the lineage and the
    /// re-drive columns of the dead letters.
    fn bronze_schema() -> Arc<Schema> {
        let errors = ["error_kind", "error_code", "error_message", "raw_payload"];
        let mut fields = vec![Field::new("note", DataType::Utf8, true)];
        fields.extend(
            lake::schema::dead_letters()
                .fields()
                .iter()
                .filter(|f| !errors.contains(&f.name().as_str()))
                .map(|f| f.as_ref().clone()),
        );
        Arc::new(Schema::new(fields))
    }

    /// The dead letters and bronze of `events`, committed as ingestion
    /// (source `test`) or as a re-drive (`redrive-<id>`) commits them.
    struct TestLake {
        lake: Lake,
        dead: delta::Table,
        bronze: delta::Table,
        /// Files written so far, to name the next.
        files: usize,
    }

    impl TestLake {
        async fn create(root: &Path) -> TestLake {
            let lake = local_lake(root);
            let dead = delta::Table::open_or_create(
                &lake,
                &Layer::DeadLetters.prefix(EVENTS),
                &lake::schema::dead_letters(),
            )
            .await
            .expect("dead letters");
            let bronze = delta::Table::open_or_create(
                &lake,
                &Layer::Bronze.prefix(EVENTS),
                &bronze_schema(),
            )
            .await
            .expect("bronze");
            TestLake {
                lake,
                dead,
                bronze,
                files: 0,
            }
        }

        /// Commits `rows` (none: a commit with only the `txn`) to `layer`
        /// as the source `source`.
        async fn commit(&mut self, layer: Layer, source: &str, rows: &[Row]) -> u64 {
            let (table, schema) = match layer {
                Layer::DeadLetters => (&mut self.dead, lake::schema::dead_letters()),
                _ => (&mut self.bronze, bronze_schema()),
            };
            let mut files = Vec::new();
            if !rows.is_empty() {
                self.files += 1;
                let batch = rows_of(&schema, rows);
                let name = format!("f{}", self.files);
                let prefix = layer.prefix(EVENTS);
                files.push(upload(&self.lake, &prefix, "2026-01-02", &name, &batch).await);
            }
            let through = table.version() as i64 + 1;
            match table.append(source, through, &files).await.expect("commit") {
                delta::Committed::Version(v) => v,
                other => panic!("{source}: {other:?}"),
            }
        }

        /// The intent of re-drive `id`, as `consumer redrive` writes it first.
        async fn intent(&self, id: &str) {
            let key = lake::redrive::intent_key(EVENTS, id);
            self.lake
                .store
                .put(&Lake::path(&key), PutPayload::from(b"{}".to_vec()))
                .await
                .expect("intent");
        }
    }

    /// Every row of the dead-letter view `view` as `offset or key|index|
    /// code|redrive_id`, then `|left_at|left_by|left_to` for a history;
    /// `-` for NULL, sorted.
    fn dead_rows(conn: &Connection, view: &str) -> Vec<String> {
        let left = if view.ends_with("_history") {
            ", coalesce(CAST(left_at AS VARCHAR), '-'), coalesce(left_by, '-'), \
             coalesce(left_to, '-')"
        } else {
            ""
        };
        let sql = format!(
            "SELECT concat_ws('|', coalesce(CAST(source_offset AS VARCHAR), source_key), \
             coalesce(CAST(record_index AS VARCHAR), '-'), error_code, \
             coalesce(redrive_id, '-'){left}) FROM {view} ORDER BY 1"
        );
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows
    }

    /// The re-driven rows of `bronze.events`: `offset or key|index|redrive_id`.
    fn redriven_bronze(conn: &Connection) -> Vec<String> {
        let sql = "SELECT concat_ws('|', coalesce(CAST(source_offset AS VARCHAR), source_key), \
                   coalesce(CAST(record_index AS VARCHAR), '-'), redrive_id) \
                   FROM bronze.events WHERE redrive_id IS NOT NULL ORDER BY 1";
        let mut stmt = conn.prepare(sql).expect("prepare");
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        rows
    }

    const WRITTEN: &str = "dead_letters.\"events__written\"";
    const HISTORY: &str = "dead_letters.events_history";
    const CURRENT: &str = "dead_letters.events";

    /// The history of one row: `-|-|-` while current.
    fn left(at: &str, by: &str, to: &str) -> String {
        format!("{at}|{by}|{to}")
    }
    const STAYS: &str = "-|-|-";
    const AT1: &str = "2026-02-01 00:00:00+00";
    const AT2: &str = "2026-02-02 00:00:00+00";
    const AT3: &str = "2026-02-03 00:00:00+00";

    fn assert_views(conn: &Connection, history: &[(&str, String)], step: &str) {
        let mut expected: Vec<String> = history
            .iter()
            .map(|(row, left)| format!("{row}|{left}"))
            .collect();
        expected.sort();
        assert_eq!(dead_rows(conn, HISTORY), expected, "history, {step}");
        let mut current: Vec<String> = history
            .iter()
            .filter(|(_, left)| left == STAYS)
            .map(|(row, _)| row.to_string())
            .collect();
        current.sort();
        assert_eq!(dead_rows(conn, CURRENT), current, "current, {step}");
    }

    /// The SQL of a view, as DuckDB keeps it.
    fn view_sql(session: &Session, name: &str) -> String {
        session
            .conn
            .query_row(
                "SELECT sql FROM duckdb_views() WHERE view_name = ?",
                [name],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Re-drives seen through `dead_letters.events_history` and
    /// `dead_letters.events` at every pair of snapshots a re-drive leaves,
    /// by both readers: a record moved to bronze leaves the dead letters
    /// with the bronze commit, a record rewritten with another code shows
    /// its new row only once the re-drive's bronze `txn` is in the bronze
    /// snapshot, a split corrupt batch leaves for its records, and
    /// `--as-of` an older bronze version shows what was visible then.
    #[test]
    fn re_drives_move_each_record_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let mut lake = rt.block_on(TestLake::create(root));
        let delta_options = || Options {
            delta_extension: Some(testkit::delta_extension().into()),
            ..Options::new(root.join("mirror"))
        };
        let sessions = || {
            let delta = open(root, delta_options());
            assert_eq!(delta.reader(), Reader::DeltaScan);
            [open(root, file_list(root)), delta]
        };

        // Ingestion: bronze v1, v2; dead letters v1. Nothing re-driven.
        let a = kafka(10, Some(0), "out_of_range");
        let b = kafka(10, Some(1), "missing_field");
        let c = kafka(11, None, "not_json");
        let d = kafka(12, Some(0), "too_long");
        let e = files(2, "bad_type");
        let f = files(3, "bad_type");
        rt.block_on(async {
            lake.commit(Layer::Bronze, "test", &[kafka(9, Some(0), "ok")])
                .await;
            lake.commit(Layer::Bronze, "test", &[kafka(13, Some(0), "ok")])
                .await;
            lake.commit(Layer::DeadLetters, "test", &[a, b, c, d, e, f])
                .await;
        });
        let originals = [
            ("10|0|out_of_range|-", STAYS.to_string()),
            ("10|1|missing_field|-", STAYS.to_string()),
            ("11|-|not_json|-", STAYS.to_string()),
            ("12|0|too_long|-", STAYS.to_string()),
            (
                concat!("raw/events/r/000000001.json", "|2|bad_type|-"),
                STAYS.to_string(),
            ),
            (
                concat!("raw/events/r/000000001.json", "|3|bad_type|-"),
                STAYS.to_string(),
            ),
        ];
        for session in sessions() {
            let step = format!("no re-drive, {:?}", session.reader());
            assert_views(&session.conn, &originals, &step);
            // Without re-drives, the history reads the dead letters alone.
            let sql = view_sql(&session, "events_history");
            assert!(!sql.contains("bronze"), "{sql}");
            let written = columns(&session, WRITTEN);
            assert_eq!(columns(&session, CURRENT), written, "{step}");
            let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names[names.len() - 4..],
                ["redrive_id", "redriven_at", "event_date", "raw_text"],
                "{step}"
            );
            let mut history = written.clone();
            history.extend([
                ("left_at".into(), "TIMESTAMP WITH TIME ZONE".into()),
                ("left_by".into(), "VARCHAR".into()),
                ("left_to".into(), "VARCHAR".into()),
            ]);
            assert_eq!(columns(&session, HISTORY), history, "{step}");
        }

        // Re-drive 000001: `a` and `e` pass now, `b` fails another way.
        // Its dead letters first (v2), then bronze (v3).
        let b1 = kafka(10, Some(1), "bad_type").by("000001", T1);
        rt.block_on(async {
            lake.intent("000001").await;
            // Not an intent: ignored.
            let notes = Lake::path("_redrives/events/notes.txt");
            lake.lake
                .store
                .put(&notes, PutPayload::from(b"x".to_vec()))
                .await
                .expect("put");
            lake.commit(Layer::DeadLetters, "redrive-000001", &[b1])
                .await;
        });
        // The dead letters of 000001 are committed, its bronze is not: they
        // are not shown, the originals are.
        let mut delta_session = None;
        for session in sessions() {
            assert_views(&session.conn, &originals, "000001 in the dead letters only");
            assert_eq!(dead_rows(&session.conn, WRITTEN).len(), 7);
            delta_session = Some(session);
        }
        let mut delta_session = delta_session.expect("the delta_scan session");
        rt.block_on(async {
            let moved = [
                kafka(10, Some(0), "ok").by("000001", T1),
                files(2, "ok").by("000001", T1),
            ];
            assert_eq!(
                lake.commit(Layer::Bronze, "redrive-000001", &moved).await,
                3
            );
        });
        let after_1 = [
            ("10|0|out_of_range|-", left(AT1, "000001", "bronze")),
            ("10|1|missing_field|-", left(AT1, "000001", "dead_letters")),
            ("10|1|bad_type|000001", STAYS.to_string()),
            ("11|-|not_json|-", STAYS.to_string()),
            ("12|0|too_long|-", STAYS.to_string()),
            (
                concat!("raw/events/r/000000001.json", "|2|bad_type|-"),
                left(AT1, "000001", "bronze"),
            ),
            (
                concat!("raw/events/r/000000001.json", "|3|bad_type|-"),
                STAYS.to_string(),
            ),
        ];
        delta_session.refresh().expect("refresh");
        for session in sessions().iter().chain([&delta_session]) {
            let step = format!("000001 committed, {:?}", session.reader());
            assert_views(&session.conn, &after_1, &step);
            assert_eq!(
                redriven_bronze(&session.conn),
                [
                    "10|0|000001",
                    concat!("raw/events/r/000000001.json", "|2|000001")
                ],
                "{step}"
            );
        }

        // Re-drive 000002 splits the corrupt batch at offset 11: record 0
        // passes, record 1 fails.
        rt.block_on(async {
            lake.intent("000002").await;
            let c1 = kafka(11, Some(1), "out_of_range").by("000002", T2);
            lake.commit(Layer::DeadLetters, "redrive-000002", &[c1])
                .await;
            let c0 = kafka(11, Some(0), "ok").by("000002", T2);
            assert_eq!(lake.commit(Layer::Bronze, "redrive-000002", &[c0]).await, 4);
        });
        let mut after_2 = after_1.to_vec();
        after_2[3].1 = left(AT2, "000002", "bronze");
        after_2.push(("11|1|out_of_range|000002", STAYS.to_string()));
        // delta_scan reads the newest snapshots when queried: the session
        // made before 000002 sees its bronze rows and so its dead letters.
        assert_views(&delta_session.conn, &after_2, "000002, not refreshed");
        for session in sessions() {
            let step = format!("000002 committed, {:?}", session.reader());
            assert_views(&session.conn, &after_2, &step);
        }

        // Re-drive 000003 rewrites `d`; its bronze commit (only the txn: no
        // record passed) comes later.
        rt.block_on(async {
            lake.intent("000003").await;
            let d1 = kafka(12, Some(0), "bad_enum").by("000003", T3);
            assert_eq!(
                lake.commit(Layer::DeadLetters, "redrive-000003", &[d1])
                    .await,
                4
            );
        });
        for session in sessions() {
            let step = format!("000003 in the dead letters only, {:?}", session.reader());
            assert_views(&session.conn, &after_2, &step);
            assert_eq!(dead_rows(&session.conn, WRITTEN).len(), 9, "{step}");
        }
        rt.block_on(async {
            assert_eq!(lake.commit(Layer::Bronze, "redrive-000003", &[]).await, 5);
        });
        let mut after_3 = after_2.clone();
        after_3[4].1 = left(AT3, "000003", "dead_letters");
        after_3.push(("12|0|bad_enum|000003", STAYS.to_string()));
        delta_session.refresh().expect("refresh");
        for session in sessions().iter().chain([&delta_session]) {
            let step = format!("000003 committed, {:?}", session.reader());
            assert_views(&session.conn, &after_3, &step);
        }

        // --as-of 3: the dead letters of 000001 and 000002, bronze with
        // 000001 only: 000002's dead letters are hidden and its corrupt
        // batch is still a dead letter. --as-of 4: 000002 in both, 000003
        // in the dead letters only.
        let as_of = |version| {
            let pinned = |options: Options| Options {
                as_of: AsOf::Version(version),
                ..options
            };
            [
                open(root, pinned(file_list(root))),
                open(root, pinned(delta_options())),
            ]
        };
        for session in as_of(3) {
            let step = format!("as of 3, {:?}", session.reader());
            assert_views(&session.conn, &after_1, &step);
            assert_eq!(redriven_bronze(&session.conn).len(), 2, "{step}");
        }
        for session in as_of(4) {
            let step = format!("as of 4, {:?}", session.reader());
            assert_views(&session.conn, &after_2, &step);
        }
        // The dead letters have no version 5: their views raise, bronze
        // is read.
        for session in as_of(5) {
            for view in [CURRENT, HISTORY] {
                let err = session
                    .conn
                    .execute_batch(&format!("SELECT * FROM {view}"))
                    .expect_err("no such snapshot");
                assert!(
                    err.to_string()
                        .contains("dead_letters.events has no snapshot at version 5"),
                    "{view}: {err}"
                );
            }
            assert_eq!(redriven_bronze(&session.conn).len(), 3);
        }

        // init-sql recreates the same views in another DuckDB, in both forms.
        for session in sessions() {
            let other = Connection::open_in_memory().expect("duckdb");
            let sql = session.init_sql(false);
            other
                .execute_batch(&sql)
                .unwrap_or_else(|e| panic!("{e}\n{sql}"));
            let step = format!("init-sql, {:?}", session.reader());
            assert_views(&other, &after_3, &step);
            let tail = |sql: &str| sql.find("CREATE OR REPLACE VIEW dead_letters.events_history");
            let (history_at, written_at) = (
                tail(&sql).expect("history printed"),
                sql.find(&format!("CREATE OR REPLACE VIEW {WRITTEN}"))
                    .expect("written printed"),
            );
            let bronze_at = sql
                .find("CREATE OR REPLACE VIEW bronze.events")
                .expect("bronze printed");
            assert!(bronze_at < history_at && written_at < history_at, "{sql}");
        }
    }

    /// A dead-letter table written before re-drives existed has no
    /// `redrive_id`: its rows are all current, and its views the columns it
    /// has; bronze's re-driven rows still take theirs.
    #[test]
    fn dead_letters_without_the_redrive_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let lake = local_lake(root);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let old: Arc<Schema> = Arc::new(Schema::new(
            lake::schema::dead_letters()
                .fields()
                .iter()
                .filter(|f| !views::REDRIVE_COLUMNS.contains(&f.name().as_str()))
                .map(|f| f.as_ref().clone())
                .collect::<Vec<_>>(),
        ));
        rt.block_on(async {
            let prefix = Layer::DeadLetters.prefix(EVENTS);
            let mut dead = delta::Table::open_or_create(&lake, &prefix, &old)
                .await
                .expect("dead letters");
            let rows = [
                kafka(10, Some(0), "out_of_range"),
                kafka(10, Some(1), "missing_field"),
            ];
            append(
                &lake,
                &mut dead,
                &prefix,
                "2026-01-02",
                "old",
                &rows_of(&old, &rows),
            )
            .await;
            let prefix = Layer::Bronze.prefix(EVENTS);
            let mut bronze = delta::Table::open_or_create(&lake, &prefix, &bronze_schema())
                .await
                .expect("bronze");
            let file = upload(
                &lake,
                &prefix,
                "2026-01-02",
                "moved",
                &rows_of(
                    &bronze_schema(),
                    &[kafka(10, Some(0), "ok").by("000001", T1)],
                ),
            )
            .await;
            bronze
                .append("redrive-000001", 1, &[file])
                .await
                .expect("commit");
            let key = lake::redrive::intent_key(EVENTS, "000001");
            lake.store
                .put(&Lake::path(&key), PutPayload::from(b"{}".to_vec()))
                .await
                .expect("intent");
        });
        let session = open(root, file_list(root));
        let written = columns(&session, WRITTEN);
        assert!(!written.iter().any(|(n, _)| n == "redrive_id"));
        assert_eq!(columns(&session, CURRENT), written);
        let history = "SELECT concat_ws('|', source_offset, record_index, error_code, \
                       coalesce(left_by, '-'), coalesce(left_to, '-')) \
                       FROM dead_letters.events_history ORDER BY 1";
        let mut stmt = session.conn.prepare(history).expect("prepare");
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        assert_eq!(
            rows,
            ["10|0|out_of_range|000001|bronze", "10|1|missing_field|-|-"]
        );
        assert_eq!(
            count(&session, "SELECT count(*) FROM dead_letters.events"),
            1
        );
    }
}
