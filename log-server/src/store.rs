//! Durable storage: one [`LogStore`] trait, implemented over `sqlx` for SQLite (the embedded
//! default) and PostgreSQL (production, many servers).
//!
//! Queries are checked at run time (`sqlx::query`, never the compile-time macros), so building
//! needs no database. Both backends share the SQL below, written with `$N` placeholders, which
//! SQLite and PostgreSQL both accept; the few differences are in [`Backend`].

use std::borrow::Cow;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use lucent_verifier::merkle::{Hash, LeafHash};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Connection, Executor, Row};
use thiserror::Error;

/// Rows per multi-row `INSERT` (5 columns: well under both databases' parameter limits).
const INSERT_CHUNK: usize = 1000;

/// Why a storage operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no (connection, constraint, I/O).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no supported backend.
    #[error("unsupported database URL {0:?} (want sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    /// Another sequencer moved the tree since this one last looked; nothing was written.
    #[error("tree is at size {found} in the database, this sequencer expected {expected}")]
    SizeMoved {
        /// Size this sequencer believed.
        expected: u64,
        /// Size in the database.
        found: u64,
    },
    /// A stored value is not what this server writes (corruption or a foreign schema).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The sequencer's plan for a batch failed; nothing was written.
    #[error("planning the batch failed: {0}")]
    Plan(String),
    /// The sequencer lock file could not be opened.
    #[error("sequencer lock file {path}: {source}")]
    LockFile {
        /// Path of the lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;
/// The boxed future every [`LogStore`] method returns (so the trait can be used as `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// Which database is behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, one writer.
    Sqlite,
    /// PostgreSQL: many servers, one sequencer elected by advisory lock.
    Postgres,
}

/// A statement offered for sequencing.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `LeafHash::of_entry(data)`.
    pub leaf: LeafHash,
    /// The exact statement note bytes.
    pub data: Vec<u8>,
    /// Statement kind (`release`, `keyconfig`, `revoke`), for lookups.
    pub kind: &'static str,
    /// Lookup key: the measurement bytes, or the key-config id byte.
    pub lookup: Vec<u8>,
}

/// What the sequencer computed for the new leaves of one batch, inside the transaction.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every new stored hash: (tree level, index at that level, hash).
    pub hashes: Vec<(u8, u64, Hash)>,
    /// Root of the new tree.
    pub root: Hash,
    /// The signed checkpoint note for the new tree.
    pub checkpoint_note: Vec<u8>,
    /// Whether the checkpoint is published at once (no witnesses configured).
    pub publish_now: bool,
}

/// The planner: given the current size and the new leaves in order, computes the [`Plan`].
pub type Planner<'a> = dyn FnMut(u64, &[LeafHash]) -> Result<Plan, String> + Send + 'a;

/// Where each candidate of a batch ended up.
#[derive(Debug, Clone)]
pub struct Integrated {
    /// Tree size before the batch.
    pub old_size: u64,
    /// Tree size after the batch.
    pub new_size: u64,
    /// For each candidate, in order: its index and whether it was already in the log.
    pub placed: Vec<(u64, bool)>,
}

/// A checkpoint as stored.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note (with cosignatures once published).
    pub note: Vec<u8>,
    /// Whether witnessing is done and the checkpoint is served at `/checkpoint`.
    pub published: bool,
}

/// Held while this process is the one sequencer. Dropping it releases the election.
pub enum SequencerLock {
    /// No election (in-memory SQLite).
    Unshared,
    /// SQLite file: an exclusive lock on a file next to the database.
    File(std::fs::File),
    /// PostgreSQL: a session advisory lock on a dedicated connection.
    Advisory(Box<sqlx::AnyConnection>),
}

impl SequencerLock {
    /// Checks the lock is still held (for PostgreSQL: that its connection is alive).
    pub async fn check(&mut self) -> StoreResult<()> {
        if let SequencerLock::Advisory(conn) = self {
            conn.ping().await?;
        }
        Ok(())
    }
}

/// Durable storage of a log: entries, stored hashes, checkpoints, pending submissions.
pub trait LogStore: Send + Sync + 'static {
    /// The database kind.
    fn backend(&self) -> Backend;
    /// Current tree size (of entries and hashes, published or not).
    fn tree_size(&self) -> StoreFuture<'_, u64>;
    /// Index of the entry with this leaf hash, if logged.
    fn find_leaf(&self, leaf: LeafHash) -> StoreFuture<'_, Option<u64>>;
    /// Entries `start..end` in order (fewer if the log is shorter).
    fn entries(&self, start: u64, end: u64) -> StoreFuture<'_, Vec<Vec<u8>>>;
    /// Stored hashes of tree level `level`, indexes `start..end`, in order.
    fn level_hashes(&self, level: u8, start: u64, end: u64) -> StoreFuture<'_, Vec<Hash>>;
    /// Stored hashes by `(level, index)`, in the order asked.
    fn read_nodes(&self, nodes: Vec<(u8, u64)>) -> StoreFuture<'_, Vec<Hash>>;
    /// The latest checkpoint, or the latest published one.
    fn latest_checkpoint(&self, published_only: bool) -> StoreFuture<'_, Option<StoredCheckpoint>>;
    /// The checkpoint signed at exactly `size`, if any.
    fn checkpoint_at(&self, size: u64) -> StoreFuture<'_, Option<StoredCheckpoint>>;
    /// Stores a checkpoint outside a batch (the empty tree's); no-op if one exists at `size`.
    fn insert_checkpoint(
        &self,
        size: u64,
        root: Hash,
        note: Vec<u8>,
        published: bool,
    ) -> StoreFuture<'_, ()>;
    /// Stores the cosigned note of a checkpoint and marks it published.
    fn publish_checkpoint(&self, size: u64, note: Vec<u8>) -> StoreFuture<'_, ()>;
    /// Entries of `kind` whose lookup key is `key`: (index, bytes), oldest first, at most 1000.
    fn lookup(&self, kind: &'static str, key: Vec<u8>) -> StoreFuture<'_, Vec<(u64, Vec<u8>)>>;
    /// Records a submission for the sequencer (idempotent).
    fn add_pending(&self, candidate: Candidate) -> StoreFuture<'_, ()>;
    /// Up to `limit` pending submissions, oldest first.
    fn pending(&self, limit: usize) -> StoreFuture<'_, Vec<(LeafHash, Vec<u8>)>>;
    /// Sequences a batch in one transaction: checks the tree is still at `expected_size`,
    /// skips candidates already logged, asks `planner` for the new hashes and checkpoint,
    /// and writes entries, hashes, checkpoint and tree size together; removes the candidates
    /// from `pending`. Nothing is written unless everything is.
    fn integrate<'a>(
        &'a self,
        expected_size: u64,
        candidates: &'a [Candidate],
        planner: &'a mut Planner<'a>,
    ) -> StoreFuture<'a, Integrated>;
    /// The last size this witness cosigned (0 if none).
    fn witness_size(&self, witness: String) -> StoreFuture<'_, u64>;
    /// Records the last size this witness cosigned.
    fn set_witness_size(&self, witness: String, size: u64) -> StoreFuture<'_, ()>;
    /// Waits until this process may sequence, and returns the held lock.
    fn acquire_sequencer(&self) -> StoreFuture<'_, SequencerLock>;
    /// Closes the connections.
    fn close(&self) -> StoreFuture<'_, ()>;
}

/// The `sqlx` store for both backends.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// File path of the SQLite database (None in memory or on PostgreSQL).
    sqlite_path: Option<PathBuf>,
}

fn migrator(backend: Backend) -> Migrator {
    let sql = match backend {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_log.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0001_log.sql"),
    };
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("log"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ..Migrator::DEFAULT
    }
}

fn to_i64(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit in a BIGINT")))
}

fn to_u64(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

fn hash_of(bytes: &[u8]) -> StoreResult<Hash> {
    Hash::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The `n`th (1-based) bind placeholder of a statement: `$n` for PostgreSQL; a plain `?` for
/// SQLite, which binds them in order. (Numbered SQLite parameters make every bind look its
/// name up in a list as long as the statement's parameters, so a 5000-parameter INSERT
/// spends most of its time binding.)
fn placeholder(backend: Backend, n: usize, out: &mut String) {
    match backend {
        Backend::Sqlite => out.push('?'),
        Backend::Postgres => {
            out.push('$');
            out.push_str(&n.to_string());
        }
    }
}

/// `(p1,p2,…),(…)` for `rows` rows of `cols` bind placeholders, for a multi-row `INSERT`.
pub fn values_sql(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 6);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            placeholder(backend, n, &mut s);
            n += 1;
        }
        s.push(')');
    }
    s
}

/// `p1,p2,…,pn`, for an `IN (…)` list.
/// `statement WHERE leaf_hash IN (…)` with a placeholder for each of `chunk`'s leaf hashes.
fn where_leaf_hash_in(backend: Backend, statement: &str, chunk: &[Candidate]) -> String {
    let mut s = format!("{statement} WHERE leaf_hash IN (");
    for i in 1..=chunk.len() {
        if i > 1 {
            s.push(',');
        }
        placeholder(backend, i, &mut s);
    }
    s.push(')');
    s
}

/// The query `sql` (from [`where_leaf_hash_in`]) with `chunk`'s leaf hashes bound, in order.
fn bind_leaf_hashes<'q>(
    sql: &'q str,
    chunk: &[Candidate],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    chunk
        .iter()
        .fold(sqlx::query(sql), |q, c| q.bind(c.leaf.0 .0.to_vec()))
}

fn checkpoint_row(row: &AnyRow) -> StoreResult<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: to_u64(row.try_get("size")?)?,
        root: hash_of(&row.try_get::<Vec<u8>, _>("root")?)?,
        note: row.try_get("note")?,
        published: row.try_get::<i64, _>("published")? != 0,
    })
}

impl SqlStore {
    /// Connects (creating an SQLite file and its directory on first start) and applies
    /// the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (backend, sqlite_path) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
                (Backend::Sqlite, None)
            } else {
                let p = PathBuf::from(path);
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::LockFile {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                (Backend::Sqlite, Some(p))
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, None)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let mut connect_url = url.to_owned();
        if backend == Backend::Sqlite && sqlite_path.is_some() && !url.contains("mode=") {
            connect_url.push_str(if url.contains('?') { "&" } else { "?" });
            connect_url.push_str("mode=rwc");
        }
        let options = AnyConnectOptions::from_str(&connect_url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    // An in-memory database lives and dies with its one connection.
                    .max_connections(if sqlite_path.is_some() { 8 } else { 1 })
                    .min_connections(if sqlite_path.is_some() { 0 } else { 1 })
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL: readers never block the sequencer. FULL: a commit is on
                            // disk before anyone is told an index, even across power loss.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // 32 MiB of page cache (the default is 2 MiB): the leaf-hash
                            // index takes random inserts, which thrash a small cache.
                            conn.execute("PRAGMA cache_size = -32768").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .connect_with(options)
                    .await?
            }
        };
        migrator(backend).run(&pool).await?;
        Ok(SqlStore {
            pool,
            backend,
            url: url.to_owned(),
            sqlite_path,
        })
    }

    /// The underlying pool (for benchmarks and tests).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn integrate_inner(
        &self,
        expected_size: u64,
        candidates: &[Candidate],
        planner: &mut Planner<'_>,
    ) -> StoreResult<Integrated> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let size_sql = match self.backend {
            Backend::Sqlite => "SELECT size FROM tree_head WHERE id = 1",
            Backend::Postgres => "SELECT size FROM tree_head WHERE id = 1 FOR UPDATE",
        };
        let size = to_u64(
            sqlx::query(size_sql)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?,
        )?;
        if size != expected_size {
            return Err(StoreError::SizeMoved {
                expected: expected_size,
                found: size,
            });
        }
        // Which candidates are already logged, and duplicates within the batch.
        let mut existing: std::collections::HashMap<[u8; 32], u64> =
            std::collections::HashMap::new();
        for chunk in candidates.chunks(INSERT_CHUNK) {
            let sql = where_leaf_hash_in(self.backend, "SELECT leaf_hash, idx FROM entries", chunk);
            for row in bind_leaf_hashes(&sql, chunk).fetch_all(&mut *tx).await? {
                let leaf: Vec<u8> = row.try_get(0)?;
                let idx = to_u64(row.try_get(1)?)?;
                existing.insert(hash_of(&leaf)?.0, idx);
            }
        }
        let mut placed = Vec::with_capacity(candidates.len());
        let mut new_rows: Vec<&Candidate> = Vec::new();
        let mut next = size;
        for c in candidates {
            if let Some(&idx) = existing.get(&c.leaf.0 .0) {
                placed.push((idx, true));
            } else {
                existing.insert(c.leaf.0 .0, next);
                placed.push((next, false));
                new_rows.push(c);
                next += 1;
            }
        }
        let leaves: Vec<LeafHash> = new_rows.iter().map(|c| c.leaf).collect();
        if !new_rows.is_empty() {
            let plan = planner(size, &leaves).map_err(StoreError::Plan)?;
            let mut idx = size;
            for chunk in new_rows.chunks(INSERT_CHUNK) {
                let sql = format!(
                    "INSERT INTO entries (idx, leaf_hash, data, kind, lookup) VALUES {}",
                    values_sql(self.backend, chunk.len(), 5)
                );
                let mut q = sqlx::query(&sql);
                for c in chunk {
                    q = q
                        .bind(to_i64(idx)?)
                        .bind(c.leaf.0 .0.to_vec())
                        .bind(c.data.clone())
                        .bind(c.kind)
                        .bind(c.lookup.clone());
                    idx += 1;
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in plan.hashes.chunks(INSERT_CHUNK) {
                let sql = format!(
                    "INSERT INTO hashes (level, idx, hash) VALUES {}",
                    values_sql(self.backend, chunk.len(), 3)
                );
                let mut q = sqlx::query(&sql);
                for (level, i, h) in chunk {
                    q = q
                        .bind(i64::from(*level))
                        .bind(to_i64(*i)?)
                        .bind(h.0.to_vec());
                }
                q.execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO checkpoints (size, root, note, published, created_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(to_i64(next)?)
            .bind(plan.root.0.to_vec())
            .bind(plan.checkpoint_note)
            .bind(i64::from(plan.publish_now))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE tree_head SET size = $1 WHERE id = 1")
                .bind(to_i64(next)?)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in candidates.chunks(INSERT_CHUNK) {
            let sql = where_leaf_hash_in(self.backend, "DELETE FROM pending", chunk);
            bind_leaf_hashes(&sql, chunk).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Integrated {
            old_size: size,
            new_size: next,
            placed,
        })
    }

    async fn acquire_inner(&self) -> StoreResult<SequencerLock> {
        match self.backend {
            Backend::Sqlite => {
                let Some(db) = &self.sqlite_path else {
                    return Ok(SequencerLock::Unshared);
                };
                let mut path = db.clone().into_os_string();
                path.push(".sequencer-lock");
                let path = PathBuf::from(path);
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|source| StoreError::LockFile {
                        path: path.clone(),
                        source,
                    })?;
                loop {
                    use rustix::fs::{flock, FlockOperation};
                    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                        Ok(()) => return Ok(SequencerLock::File(file)),
                        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                        }
                        Err(e) => {
                            return Err(StoreError::LockFile {
                                path,
                                source: e.into(),
                            })
                        }
                    }
                }
            }
            Backend::Postgres => {
                let mut conn = sqlx::AnyConnection::connect(&self.url).await?;
                // One lock per schema, so logs in separate schemas of one database (tests)
                // elect separately.
                let schema: String = sqlx::query("SELECT current_schema()::text")
                    .fetch_one(&mut conn)
                    .await?
                    .try_get(0)?;
                let key = advisory_key(&schema);
                loop {
                    let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                        .bind(key)
                        .fetch_one(&mut conn)
                        .await?
                        .try_get(0)?;
                    if got {
                        return Ok(SequencerLock::Advisory(Box::new(conn)));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        }
    }
}

/// The advisory lock key of a schema: the first 8 bytes of SHA-256 over a label and the name.
fn advisory_key(schema: &str) -> i64 {
    let leaf = LeafHash::of_entry(format!("lucent-log-server sequencer {schema}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&leaf.0 .0[..8]);
    i64::from_be_bytes(b)
}

impl LogStore for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn tree_size(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let row = sqlx::query("SELECT size FROM tree_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
            to_u64(row.try_get(0)?)
        })
    }

    fn find_leaf(&self, leaf: LeafHash) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT idx FROM entries WHERE leaf_hash = $1")
                .bind(leaf.0 .0.to_vec())
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| to_u64(r.try_get(0)?)).transpose()
        })
    }

    fn entries(&self, start: u64, end: u64) -> StoreFuture<'_, Vec<Vec<u8>>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT data FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                    .bind(to_i64(start)?)
                    .bind(to_i64(end)?)
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|r| Ok(r.try_get::<Vec<u8>, _>(0)?))
                .collect()
        })
    }

    fn level_hashes(&self, level: u8, start: u64, end: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT hash FROM hashes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            )
            .bind(i64::from(level))
            .bind(to_i64(start)?)
            .bind(to_i64(end)?)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| hash_of(&r.try_get::<Vec<u8>, _>(0)?))
                .collect()
        })
    }

    fn read_nodes(&self, nodes: Vec<(u8, u64)>) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(async move {
            if nodes.is_empty() {
                return Ok(Vec::new());
            }
            let mut sql = String::from("SELECT level, idx, hash FROM hashes WHERE ");
            for i in 0..nodes.len() {
                if i > 0 {
                    sql.push_str(" OR ");
                }
                sql.push_str("(level = ");
                placeholder(self.backend, 2 * i + 1, &mut sql);
                sql.push_str(" AND idx = ");
                placeholder(self.backend, 2 * i + 2, &mut sql);
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for (level, idx) in &nodes {
                q = q.bind(i64::from(*level)).bind(to_i64(*idx)?);
            }
            let mut found = std::collections::HashMap::new();
            for row in q.fetch_all(&self.pool).await? {
                let level = to_u64(row.try_get(0)?)?;
                let idx = to_u64(row.try_get(1)?)?;
                found.insert((level, idx), hash_of(&row.try_get::<Vec<u8>, _>(2)?)?);
            }
            nodes
                .iter()
                .map(|(l, i)| {
                    found.get(&(u64::from(*l), *i)).copied().ok_or_else(|| {
                        StoreError::Corrupt(format!("stored hash ({l}, {i}) is missing"))
                    })
                })
                .collect()
        })
    }

    fn latest_checkpoint(&self, published_only: bool) -> StoreFuture<'_, Option<StoredCheckpoint>> {
        Box::pin(async move {
            let sql = if published_only {
                "SELECT size, root, note, published FROM checkpoints WHERE published = 1 \
                 ORDER BY size DESC LIMIT 1"
            } else {
                "SELECT size, root, note, published FROM checkpoints ORDER BY size DESC LIMIT 1"
            };
            let row = sqlx::query(sql).fetch_optional(&self.pool).await?;
            row.as_ref().map(checkpoint_row).transpose()
        })
    }

    fn checkpoint_at(&self, size: u64) -> StoreFuture<'_, Option<StoredCheckpoint>> {
        Box::pin(async move {
            let row =
                sqlx::query("SELECT size, root, note, published FROM checkpoints WHERE size = $1")
                    .bind(to_i64(size)?)
                    .fetch_optional(&self.pool)
                    .await?;
            row.as_ref().map(checkpoint_row).transpose()
        })
    }

    fn insert_checkpoint(
        &self,
        size: u64,
        root: Hash,
        note: Vec<u8>,
        published: bool,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO checkpoints (size, root, note, published, created_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(to_i64(size)?)
            .bind(root.0.to_vec())
            .bind(note)
            .bind(i64::from(published))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn publish_checkpoint(&self, size: u64, note: Vec<u8>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE checkpoints SET note = $1, published = 1 WHERE size = $2")
                .bind(note)
                .bind(to_i64(size)?)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn lookup(&self, kind: &'static str, key: Vec<u8>) -> StoreFuture<'_, Vec<(u64, Vec<u8>)>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT idx, data FROM entries WHERE kind = $1 AND lookup = $2 \
                 ORDER BY idx LIMIT 1000",
            )
            .bind(kind)
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok((to_u64(r.try_get(0)?)?, r.try_get::<Vec<u8>, _>(1)?)))
                .collect()
        })
    }

    fn add_pending(&self, candidate: Candidate) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO pending (leaf_hash, data, received_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(candidate.leaf.0 .0.to_vec())
            .bind(candidate.data)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn pending(&self, limit: usize) -> StoreFuture<'_, Vec<(LeafHash, Vec<u8>)>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT leaf_hash, data FROM pending ORDER BY received_ms, leaf_hash LIMIT $1",
            )
            .bind(to_i64(limit as u64)?)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        LeafHash(hash_of(&r.try_get::<Vec<u8>, _>(0)?)?),
                        r.try_get::<Vec<u8>, _>(1)?,
                    ))
                })
                .collect()
        })
    }

    fn integrate<'a>(
        &'a self,
        expected_size: u64,
        candidates: &'a [Candidate],
        planner: &'a mut Planner<'a>,
    ) -> StoreFuture<'a, Integrated> {
        Box::pin(self.integrate_inner(expected_size, candidates, planner))
    }

    fn witness_size(&self, witness: String) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let row = sqlx::query("SELECT size FROM witness_state WHERE name = $1")
                .bind(witness)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| to_u64(r.try_get(0)?))
                .transpose()
                .map(|s| s.unwrap_or(0))
        })
    }

    fn set_witness_size(&self, witness: String, size: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO witness_state (name, size) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET size = excluded.size",
            )
            .bind(witness)
            .bind(to_i64(size)?)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn acquire_sequencer(&self) -> StoreFuture<'_, SequencerLock> {
        Box::pin(self.acquire_inner())
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }
}

/// A store shared between the sequencer and the request handlers.
pub type SharedStore = Arc<dyn LogStore>;

/// The default SQLite URL for a data directory.
pub fn default_sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("log.db").display())
}
