//! Durable storage: one [`LogStore`] trait, implemented over `sqlx` for SQLite (the embedded
//! default) and PostgreSQL (production, many servers).
//!
//! Queries are checked at run time (`sqlx::query`, never the compile-time macros), so building
//! needs no database. Both backends share the SQL below, written with `$N` placeholders, which
//! SQLite and PostgreSQL both accept; the few differences are in [`Backend`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use std::sync::Arc;

use lucent_service::db::DbError;
use lucent_verifier::merkle::{Hash, LeafHash};
use lucent_verifier::note::text_hash;
use sha2::{Digest as _, Sha256};
use sqlx::any::AnyRow;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection, Row};
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

pub use lucent_service::db::Backend;

/// A statement offered for sequencing.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `LeafHash::of_entry(data)`.
    pub leaf: LeafHash,
    /// What deduplication compares: the SHA-256 of the note's signed text
    /// ([`lucent_verifier::note::text_hash`]), so a statement is logged once however it is
    /// signed.
    pub body: [u8; 32],
    /// The exact statement note bytes.
    pub data: Vec<u8>,
    /// Statement kind (`release`, `keyconfig`, `revoke`), for lookups.
    pub kind: &'static str,
    /// Lookup key: the measurement bytes, or the key-config id byte.
    pub lookup: Vec<u8>,
}

impl Candidate {
    /// A candidate for the entry `data`. Bytes that are not a signed note (tests and
    /// benchmarks store raw bytes) are deduplicated on their whole content.
    pub fn new(data: Vec<u8>, kind: &'static str, lookup: Vec<u8>) -> Self {
        let leaf = LeafHash::of_entry(&data);
        let body = Self::body_of(&data);
        Candidate {
            leaf,
            body,
            data,
            kind,
            lookup,
        }
    }

    /// The deduplication key of the entry `data` (see [`Candidate::body`]).
    pub fn body_of(data: &[u8]) -> [u8; 32] {
        text_hash(data).unwrap_or_else(|_| Sha256::digest(data).into())
    }
}

/// Which page of a lookup to read.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Only entries below this index (the previous page's `next_before`); `None`: the newest.
    pub before: Option<u64>,
    /// At most this many entries.
    pub max_entries: usize,
    /// At most this many entry bytes, except that a page always holds at least one entry.
    pub max_bytes: usize,
}

/// One page of a lookup, newest first.
#[derive(Debug, Clone, Default)]
pub struct LookupPage {
    /// (index, kind, entry bytes), by index descending.
    pub entries: Vec<(u64, String, Vec<u8>)>,
    /// How many entries of each asked kind match, in all pages, in the order asked.
    pub totals: Vec<u64>,
    /// Where the next page starts (pass it as `before`); `None` on the last page.
    pub next_before: Option<u64>,
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
    /// The index and leaf hash of the entry whose signed text hashes to `body`, if any.
    fn find_body(&self, body: [u8; 32]) -> StoreFuture<'_, Option<(u64, LeafHash)>>;
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
    /// One page of the entries of the kinds `kinds` whose lookup key is `key`, newest first.
    fn lookup(
        &self,
        kinds: &'static [&'static str],
        key: Vec<u8>,
        page: PageRequest,
    ) -> StoreFuture<'_, LookupPage>;
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
    lucent_service::db::migrator(&match backend {
        Backend::Sqlite => [
            ("log", include_str!("../../migrations/sqlite/0001_log.sql")),
            (
                "body_hash",
                include_str!("../../migrations/sqlite/0002_body_hash.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                "log",
                include_str!("../../migrations/postgres/0001_log.sql"),
            ),
            (
                "body_hash",
                include_str!("../../migrations/postgres/0002_body_hash.sql"),
            ),
        ],
    })
}

/// Fills `body_hash` for entries stored before the column existed (a one-time upgrade).
/// An old entry that repeats an earlier one's signed text keeps no body hash: both stay
/// logged (a log never drops an entry), and the repeat is reported.
async fn backfill_body_hashes(pool: &AnyPool) -> StoreResult<()> {
    let mut after = -1i64;
    let mut filled = 0u64;
    loop {
        let rows = sqlx::query(
            "SELECT idx, data FROM entries WHERE body_hash IS NULL AND idx > $1 \
             ORDER BY idx LIMIT 1000",
        )
        .bind(after)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get(0)?;
        for row in &rows {
            let idx: i64 = row.try_get(0)?;
            let body = Candidate::body_of(&row.try_get::<Vec<u8>, _>(1)?);
            let first = sqlx::query("SELECT idx FROM entries WHERE body_hash = $1")
                .bind(body.to_vec())
                .fetch_optional(pool)
                .await?;
            if let Some(first) = first {
                let first: i64 = first.try_get(0)?;
                tracing::warn!(
                    index = idx,
                    first = first,
                    "entry repeats the signed text of an earlier entry (logged before \
                     deduplication on the text)"
                );
                continue;
            }
            sqlx::query("UPDATE entries SET body_hash = $1 WHERE idx = $2")
                .bind(body.to_vec())
                .bind(idx)
                .execute(pool)
                .await?;
            filled += 1;
        }
    }
    if filled > 0 {
        tracing::info!(entries = filled, "filled in the statement-text hashes");
    }
    Ok(())
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
/// `statement WHERE column IN (…)` with `n` placeholders.
fn where_column_in(backend: Backend, statement: &str, column: &str, n: usize) -> String {
    let mut s = format!("{statement} WHERE {column} IN (");
    for i in 1..=n {
        if i > 1 {
            s.push(',');
        }
        placeholder(backend, i, &mut s);
    }
    s.push(')');
    s
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
        let lucent_service::db::Database {
            pool,
            backend,
            sqlite_path,
        } = lucent_service::db::open(url, if url.starts_with("sqlite") { 8 } else { 16 })
            .await
            .map_err(|e| match e {
                DbError::UnsupportedUrl(url) => StoreError::UnsupportedUrl(url),
                DbError::Directory { path, source } => StoreError::LockFile { path, source },
                DbError::Sql(e) => StoreError::Database(e),
                DbError::Migrate(e) => StoreError::Migrate(e),
                e => StoreError::Corrupt(e.to_string()),
            })?;
        migrator(backend).run(&pool).await?;
        backfill_body_hashes(&pool).await?;
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
        // Which candidates are already logged (by signed text), and duplicates within the
        // batch.
        let mut existing: std::collections::HashMap<[u8; 32], u64> =
            std::collections::HashMap::new();
        for chunk in candidates.chunks(INSERT_CHUNK) {
            let sql = where_column_in(
                self.backend,
                "SELECT body_hash, idx FROM entries",
                "body_hash",
                chunk.len(),
            );
            let q = chunk
                .iter()
                .fold(sqlx::query(&sql), |q, c| q.bind(c.body.to_vec()));
            for row in q.fetch_all(&mut *tx).await? {
                let body: Vec<u8> = row.try_get(0)?;
                let idx = to_u64(row.try_get(1)?)?;
                existing.insert(hash_of(&body)?.0, idx);
            }
        }
        let mut placed = Vec::with_capacity(candidates.len());
        let mut new_rows: Vec<&Candidate> = Vec::new();
        let mut next = size;
        for c in candidates {
            if let Some(&idx) = existing.get(&c.body) {
                placed.push((idx, true));
            } else {
                existing.insert(c.body, next);
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
                    "INSERT INTO entries (idx, leaf_hash, body_hash, data, kind, lookup) VALUES {}",
                    values_sql(self.backend, chunk.len(), 6)
                );
                let mut q = sqlx::query(&sql);
                for c in chunk {
                    q = q
                        .bind(to_i64(idx)?)
                        .bind(c.leaf.0 .0.to_vec())
                        .bind(c.body.to_vec())
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
            let sql = where_column_in(
                self.backend,
                "DELETE FROM pending",
                "leaf_hash",
                chunk.len(),
            );
            chunk
                .iter()
                .fold(sqlx::query(&sql), |q, c| q.bind(c.leaf.0 .0.to_vec()))
                .execute(&mut *tx)
                .await?;
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

    fn find_body(&self, body: [u8; 32]) -> StoreFuture<'_, Option<(u64, LeafHash)>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT idx, leaf_hash FROM entries WHERE body_hash = $1")
                .bind(body.to_vec())
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| {
                Ok((
                    to_u64(r.try_get(0)?)?,
                    LeafHash(hash_of(&r.try_get::<Vec<u8>, _>(1)?)?),
                ))
            })
            .transpose()
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

    fn lookup(
        &self,
        kinds: &'static [&'static str],
        key: Vec<u8>,
        page: PageRequest,
    ) -> StoreFuture<'_, LookupPage> {
        Box::pin(async move {
            let mut totals = Vec::with_capacity(kinds.len());
            for kind in kinds {
                let row =
                    sqlx::query("SELECT COUNT(*) FROM entries WHERE kind = $1 AND lookup = $2")
                        .bind(*kind)
                        .bind(key.clone())
                        .fetch_one(&self.pool)
                        .await?;
                totals.push(to_u64(row.try_get(0)?)?);
            }
            let sql = where_column_in(
                self.backend,
                "SELECT idx, kind, data FROM entries",
                "kind",
                kinds.len(),
            );
            let n = kinds.len();
            let mut sql = format!("{sql} AND lookup = ");
            placeholder(self.backend, n + 1, &mut sql);
            sql.push_str(" AND idx < ");
            placeholder(self.backend, n + 2, &mut sql);
            sql.push_str(" ORDER BY idx DESC LIMIT ");
            placeholder(self.backend, n + 3, &mut sql);
            let rows = kinds
                .iter()
                .fold(sqlx::query(&sql), |q, k| q.bind(*k))
                .bind(key)
                .bind(page.before.map_or(Ok(i64::MAX), to_i64)?)
                .bind(to_i64(page.max_entries as u64 + 1)?)
                .fetch_all(&self.pool)
                .await?;
            let mut out = LookupPage {
                totals,
                ..LookupPage::default()
            };
            let mut bytes = 0usize;
            for r in &rows {
                let index = to_u64(r.try_get(0)?)?;
                let data: Vec<u8> = r.try_get(2)?;
                let full = out.entries.len() >= page.max_entries
                    || (!out.entries.is_empty() && bytes + data.len() > page.max_bytes);
                if full {
                    out.next_before = out.entries.last().map(|(i, _, _)| *i);
                    break;
                }
                bytes += data.len();
                out.entries.push((index, r.try_get(1)?, data));
            }
            Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use lucent_verifier::note::NoteSigner;

    /// A database from before `body_hash` gets the column filled in at start-up. An old
    /// entry that repeats an earlier entry's signed text keeps none and stays logged; a new
    /// submission of that text is then found as the first one.
    #[tokio::test]
    async fn an_old_database_gets_its_text_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let url = default_sqlite_url(dir.path());
        let a = NoteSigner::generate(&mut rand_core::OsRng, "a.example").unwrap();
        let b = NoteSigner::generate(&mut rand_core::OsRng, "b.example").unwrap();
        let x_by_a = a.sign(b"text x\n").unwrap();
        let x_by_b = b.sign(b"text x\n").unwrap();
        let y_by_a = a.sign(b"text y\n").unwrap();
        {
            sqlx::any::install_default_drivers();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&format!("{url}?mode=rwc"))
                .await
                .unwrap();
            let mut old = migrator(Backend::Sqlite);
            old.migrations = std::borrow::Cow::Owned(old.migrations[..1].to_vec());
            old.run(&pool).await.unwrap();
            for (idx, data) in [&x_by_a, &x_by_b, &y_by_a].into_iter().enumerate() {
                sqlx::query(
                    "INSERT INTO entries (idx, leaf_hash, data, kind, lookup) \
                     VALUES ($1, $2, $3, 'other', $4)",
                )
                .bind(idx as i64)
                .bind(LeafHash::of_entry(data).0 .0.to_vec())
                .bind(data.clone())
                .bind(Vec::<u8>::new())
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        let store = SqlStore::connect(&url).await.unwrap();
        let body = |note: &[u8]| text_hash(note).unwrap();
        assert_eq!(
            store.find_body(body(&x_by_a)).await.unwrap(),
            Some((0, LeafHash::of_entry(&x_by_a)))
        );
        assert_eq!(body(&x_by_a), body(&x_by_b));
        assert_eq!(
            store.find_body(body(&y_by_a)).await.unwrap(),
            Some((2, LeafHash::of_entry(&y_by_a)))
        );
        let unfilled: i64 = sqlx::query("SELECT COUNT(*) FROM entries WHERE body_hash IS NULL")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(unfilled, 1);
        // The repeat is still logged at its index.
        assert_eq!(
            store.find_leaf(LeafHash::of_entry(&x_by_b)).await.unwrap(),
            Some(1)
        );
        // Starting again changes nothing.
        drop(store);
        let store = SqlStore::connect(&url).await.unwrap();
        assert_eq!(
            store.find_body(body(&x_by_b)).await.unwrap(),
            Some((0, LeafHash::of_entry(&x_by_a)))
        );
    }

    /// Lookup pages: newest first, bounded by entries and by bytes (but never empty), totals
    /// over all pages, and a cursor that reaches the oldest entry exactly once.
    #[tokio::test]
    async fn lookup_pages_are_newest_first_and_bounded() {
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        for idx in 0..10i64 {
            // Entry 7 is large: it gets a page of its own.
            let len = if idx == 7 { 500 } else { 100 };
            let kind = if idx % 3 == 0 { "revoke" } else { "release" };
            sqlx::query(
                "INSERT INTO entries (idx, leaf_hash, body_hash, data, kind, lookup) \
                 VALUES ($1, $2, $2, $3, $4, $5)",
            )
            .bind(idx)
            .bind(vec![idx as u8; 32])
            .bind(vec![b'x'; len])
            .bind(kind)
            .bind(vec![1u8])
            .execute(store.pool())
            .await
            .unwrap();
        }
        let mut before = None;
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let page = store
                .lookup(
                    &["release", "revoke"],
                    vec![1],
                    PageRequest {
                        before,
                        max_entries: 3,
                        max_bytes: 250,
                    },
                )
                .await
                .unwrap();
            assert_eq!(page.totals, vec![6, 4]);
            sizes.push(page.entries.len());
            seen.extend(page.entries.iter().map(|(i, _, _)| *i));
            match page.next_before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        assert_eq!(seen, (0..10).rev().collect::<Vec<u64>>());
        // 9 8 | 7 | 6 5 | 4 3 | 2 1 | 0: two 100-byte entries fit in 250 bytes.
        assert_eq!(sizes, vec![2, 1, 2, 2, 2, 1]);
        // Another key, or a kind not asked for, is not counted.
        let none = store
            .lookup(
                &["keyconfig"],
                vec![1],
                PageRequest {
                    before: None,
                    max_entries: 3,
                    max_bytes: 250,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (none.entries.len(), none.totals, none.next_before),
            (0, vec![0], None)
        );
    }
}
