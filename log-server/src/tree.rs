//! The tree as the store holds it: proofs and roots computed from stored hashes (with
//! `tlog_tiles` doing the math), the sequencer's right edge loaded from the store, and tiles
//! read from the store. Tile paths, entry bundles and the compact range themselves live
//! in [`lucent_verifier::tiles`], shared with every reader of the log.

use lucent_verifier::merkle::{ConsistencyProof, Hash, InclusionProof, TreeSize};
use lucent_verifier::tiles::{encode_bundle, CompactRange, StoredHashes, TILE_HEIGHT};
use thiserror::Error;
use tlog_tiles::{split_stored_hash_index, HashReader};

use crate::store::{LogStore, StoreError};

/// The tile path type the handlers and the mirror use (defined once, in the verifier).
pub use lucent_verifier::tiles::TilePath;

/// Loads the compact range of the stored tree of `size` leaves: the sequencer's right edge,
/// which it extends to learn the stored hashes of each batch.
pub async fn load_range(store: &dyn LogStore, size: u64) -> Result<CompactRange, StoreError> {
    let hashes = store.read_nodes(CompactRange::root_positions(size)).await?;
    CompactRange::from_parts(size, hashes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Records which stored hashes `tlog_tiles` asks for, answering with placeholders, so the
/// real ones can be fetched from the database in one query (the indexes a proof needs depend
/// only on the sizes, never on the hash values).
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<u64>>);

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(indexes);
        }
        Ok(vec![tlog_tiles::Hash::default(); indexes.len()])
    }
}

/// Why a proof could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The parameters name something outside the tree.
    #[error("{0}")]
    OutOfRange(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tree math failed (a missing hash).
    #[error("tree: {0}")]
    Tree(String),
}

/// Runs `f` twice: once to learn which stored hashes it reads, once with them from the store.
async fn with_stored_hashes<T>(
    store: &dyn LogStore,
    f: impl Fn(&dyn HashReaderDyn) -> Result<T, tlog_tiles::Error>,
) -> Result<T, ProveError> {
    let recorder = Recorder::default();
    f(&recorder).map_err(|e| ProveError::Tree(format!("{e:?}")))?;
    let indexes = recorder
        .0
        .into_inner()
        .map_err(|_| ProveError::Tree("recorder poisoned".into()))?;
    let nodes: Vec<(u8, u64)> = indexes
        .iter()
        .map(|&i| split_stored_hash_index(i))
        .collect();
    let hashes = store.read_nodes(nodes).await?;
    let map = StoredHashes(
        indexes
            .into_iter()
            .zip(hashes)
            .map(|(i, h)| (i, tlog_tiles::Hash(h.0)))
            .collect(),
    );
    f(&map).map_err(|e| ProveError::Tree(format!("{e:?}")))
}

/// Object-safe view of [`HashReader`] so one closure serves both passes.
trait HashReaderDyn {
    fn read(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error>;
}

impl<T: HashReader> HashReaderDyn for T {
    fn read(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        self.read_hashes(indexes)
    }
}

struct DynReader<'a>(&'a dyn HashReaderDyn);

impl HashReader for DynReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        self.0.read(indexes)
    }
}

/// Inclusion proof of leaf `index` in the tree of `size` leaves (`size` ≤ the stored size).
pub async fn prove_inclusion(
    store: &dyn LogStore,
    index: u64,
    size: u64,
) -> Result<InclusionProof, ProveError> {
    if index >= size {
        return Err(ProveError::OutOfRange(format!(
            "index {index} is not in a tree of size {size}"
        )));
    }
    let hashes = with_stored_hashes(store, |r| {
        tlog_tiles::prove_record(size, index, &DynReader(r))
    })
    .await?;
    Ok(InclusionProof {
        index,
        size: TreeSize(size),
        hashes: hashes.into_iter().map(|h| Hash(h.0)).collect(),
    })
}

/// Consistency proof from `old` to `new` leaves (`0 < old ≤ new` ≤ the stored size).
pub async fn prove_consistency(
    store: &dyn LogStore,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, ProveError> {
    if old == 0 || old > new {
        return Err(ProveError::OutOfRange(format!(
            "no consistency proof from size {old} to size {new}"
        )));
    }
    let hashes =
        with_stored_hashes(store, |r| tlog_tiles::prove_tree(new, old, &DynReader(r))).await?;
    Ok(ConsistencyProof {
        old: TreeSize(old),
        new: TreeSize(new),
        hashes: hashes.into_iter().map(|h| Hash(h.0)).collect(),
    })
}

/// Root hash of the first `size` leaves.
pub async fn root_at(store: &dyn LogStore, size: u64) -> Result<Hash, ProveError> {
    if size == 0 {
        return Ok(Hash::empty_tree());
    }
    let h = with_stored_hashes(store, |r| tlog_tiles::tree_hash(size, &DynReader(r))).await?;
    Ok(Hash(h.0))
}

/// Reads the data of a tile from the store; `None` if the tree does not hold it.
pub async fn read_tile(
    store: &dyn LogStore,
    tile: TilePath,
    size: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(items) = tile.items().filter(|_| tile.exists_in(size)) else {
        return Ok(None);
    };
    let (start, end) = (items.start, items.end);
    match tile.level() {
        None => {
            let entries = store.entries(start, end).await?;
            if entries.len() as u64 != tile.width() {
                return Err(StoreError::Corrupt(format!(
                    "entries {start}..{end} missing"
                )));
            }
            encode_bundle(&entries)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        Some(level) => {
            // A tree of fewer than 2^64 leaves has no hash tile above level 7, so this fits.
            let tree_level = level
                .checked_mul(TILE_HEIGHT)
                .ok_or_else(|| StoreError::Corrupt(format!("tile level {level}")))?;
            let hashes = store.level_hashes(tree_level, start, end).await?;
            if hashes.len() as u64 != tile.width() {
                return Err(StoreError::Corrupt(format!(
                    "hashes {start}..{end} of level {tree_level} missing"
                )));
            }
            Ok(Some(hashes.iter().flat_map(|h| h.0).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use lucent_verifier::merkle::{LeafHash, MemoryTree};
    use lucent_verifier::tiles::decode_bundle;

    use super::*;
    use crate::store::{Candidate, Plan, SqlStore};

    /// The sequencer's path: extend a compact range, store the hashes it returns, reload the
    /// range from the store; proofs, roots and tiles read from those hashes agree with a tree
    /// kept in memory.
    #[tokio::test]
    async fn stored_hashes_serve_the_range_proofs_and_tiles() {
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        let (mut range, mut tree) = (CompactRange::new(), MemoryTree::new());
        let mut all = Vec::new();
        for batch in [1usize, 300, 5, 250] {
            let candidates: Vec<Candidate> = (0..batch)
                .map(|i| {
                    let data = format!("entry {}-{i}", range.size()).into_bytes();
                    Candidate::new(data, "other", Vec::new())
                })
                .collect();
            let current = range.clone();
            let mut next = None;
            let mut planner = |_size: u64, leaves: &[LeafHash]| -> Result<Plan, String> {
                let mut r = current.clone();
                let hashes = r
                    .append(leaves)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(Into::into)
                    .collect();
                let root = r.root();
                next = Some(r);
                Ok(Plan {
                    hashes,
                    root,
                    checkpoint_note: b"not a note\n".to_vec(),
                    publish_now: true,
                })
            };
            store
                .integrate(current.size(), &candidates, &mut planner)
                .await
                .unwrap();
            range = next.unwrap();
            for c in candidates {
                tree.push(c.leaf);
                all.push(c.data);
            }
            let size = range.size();
            assert_eq!(load_range(&store, size).await.unwrap(), range);
            assert_eq!(root_at(&store, size).await.unwrap(), tree.root());
            assert_eq!(
                root_at(&store, size / 2).await.unwrap(),
                tree.root_at(size / 2).unwrap()
            );
            let index = size / 3;
            prove_inclusion(&store, index, size)
                .await
                .unwrap()
                .verify(&LeafHash::of_entry(&all[index as usize]), &tree.root())
                .unwrap();
            for t in TilePath::changed(current.size(), size) {
                let data = read_tile(&store, t, size).await.unwrap().unwrap();
                let items = t.items().unwrap();
                let (start, end) = (items.start as usize, items.end as usize);
                match t.level() {
                    None => assert_eq!(
                        decode_bundle(&data, t.width() as usize).unwrap(),
                        all[start..end]
                    ),
                    Some(0) => assert_eq!(
                        data,
                        all[start..end]
                            .iter()
                            .flat_map(|e| LeafHash::of_entry(e).0 .0)
                            .collect::<Vec<u8>>()
                    ),
                    Some(_) => assert_eq!(data.len() as u64, t.width() * 32),
                }
            }
        }
        let missing = TilePath::entries(5, 1).unwrap();
        assert_eq!(
            read_tile(&store, missing, range.size()).await.unwrap(),
            None
        );
    }
}
