//! Tree arithmetic over stored hashes, with `tlog_tiles` doing the math: the sequencer's
//! in-memory right edge, proofs and roots read from the store, and C2SP `tlog-tiles` paths.

use std::collections::HashMap;

use lucent_verifier::merkle::{ConsistencyProof, Hash, InclusionProof, LeafHash, TreeSize};
use thiserror::Error;
use tlog_tiles::{split_stored_hash_index, stored_hash_index, HashReader};

use crate::store::{LogStore, StoreError};

/// Height of every tile (C2SP `tlog-tiles` fixes it at 8).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes or entries in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Highest tile level (C2SP: levels 0 to 63).
pub const MAX_TILE_LEVEL: u8 = 63;

/// The hashes the sequencer needs to append leaves without reading the database: the roots
/// of the complete subtrees that make up the tree, plus every hash added since.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    hashes: HashMap<u64, tlog_tiles::Hash>,
}

/// Stored hashes of the complete subtrees of a tree of `size` leaves, as (level, index).
pub fn frontier_nodes(size: u64) -> Vec<(u8, u64)> {
    (0..64u8)
        .filter(|&l| size >> l & 1 == 1)
        .map(|l| (l, (size >> l) - 1))
        .collect()
}

impl HashReader for Frontier {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.hashes
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl Frontier {
    /// The frontier of a tree, from its complete-subtree roots (see [`frontier_nodes`]).
    pub fn new(size: u64, roots: &[((u8, u64), Hash)]) -> Self {
        let hashes = roots
            .iter()
            .map(|((l, i), h)| (stored_hash_index(*l, *i), tlog_tiles::Hash(h.0)))
            .collect();
        Frontier { size, hashes }
    }

    /// Loads the frontier of the stored tree.
    pub async fn load(store: &dyn LogStore, size: u64) -> Result<Self, StoreError> {
        let nodes = frontier_nodes(size);
        let hashes = store.read_nodes(nodes.clone()).await?;
        let roots: Vec<_> = nodes.into_iter().zip(hashes).collect();
        Ok(Frontier::new(size, &roots))
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends leaves; returns every new stored hash as (level, index, hash).
    pub fn append(&mut self, leaves: &[LeafHash]) -> Result<Vec<(u8, u64, Hash)>, String> {
        let mut out = Vec::with_capacity(leaves.len() * 2);
        for leaf in leaves {
            let n = self.size;
            let new =
                tlog_tiles::stored_hashes_for_record_hash(n, tlog_tiles::Hash(leaf.0 .0), &*self)
                    .map_err(|e| format!("extending the tree at {n}: {e:?}"))?;
            let base = stored_hash_index(0, n);
            for (k, h) in new.into_iter().enumerate() {
                let level = u8::try_from(k).map_err(|_| "tree too tall".to_owned())?;
                self.hashes.insert(base + k as u64, h);
                out.push((level, n >> level, Hash(h.0)));
            }
            self.size += 1;
        }
        self.prune();
        Ok(out)
    }

    /// The root of the current tree.
    pub fn root(&self) -> Result<Hash, String> {
        tlog_tiles::tree_hash(self.size, self)
            .map(|h| Hash(h.0))
            .map_err(|e| format!("root of {}: {e:?}", self.size))
    }

    fn prune(&mut self) {
        let keep: std::collections::HashSet<u64> = frontier_nodes(self.size)
            .into_iter()
            .map(|(l, i)| stored_hash_index(l, i))
            .collect();
        self.hashes.retain(|k, _| keep.contains(k));
    }
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

struct MapReader(HashMap<u64, tlog_tiles::Hash>);

impl HashReader for MapReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Why a proof could not be made.
#[derive(Debug, Error)]
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
    let map = MapReader(
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

/// A C2SP `tlog-tiles` tile: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    /// `None` for an entry bundle, else the hash tile level.
    pub level: Option<u8>,
    /// Tile index within its level.
    pub index: u64,
    /// Width: 1 to 256 (256 is a full tile).
    pub width: u64,
}

/// Why a tile path was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad tile path: {0}")]
pub struct BadTilePath(pub &'static str);

impl TilePath {
    /// Parses the part after `/tile/` strictly (canonical, so every tile has one path).
    pub fn parse(rest: &str) -> Result<Self, BadTilePath> {
        if rest.len() > 64 {
            return Err(BadTilePath("too long"));
        }
        let (head, tail) = rest.split_once('/').ok_or(BadTilePath("no index"))?;
        let level = if head == "entries" {
            None
        } else {
            if head.is_empty()
                || head.len() > 2
                || !head.bytes().all(|b| b.is_ascii_digit())
                || (head.len() > 1 && head.starts_with('0'))
            {
                return Err(BadTilePath("level is not a canonical number"));
            }
            let l: u8 = head.parse().map_err(|_| BadTilePath("level"))?;
            if l > MAX_TILE_LEVEL {
                return Err(BadTilePath("level above 63"));
            }
            Some(l)
        };
        let (index_part, width) = match tail.split_once(".p/") {
            Some((i, w)) => {
                if w.is_empty()
                    || w.len() > 3
                    || !w.bytes().all(|b| b.is_ascii_digit())
                    || w.starts_with('0')
                {
                    return Err(BadTilePath("width is not a canonical number"));
                }
                let w: u64 = w.parse().map_err(|_| BadTilePath("width"))?;
                if !(1..TILE_WIDTH).contains(&w) {
                    return Err(BadTilePath("partial width must be 1 to 255"));
                }
                (i, w)
            }
            None => (tail, TILE_WIDTH),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (k, g) in groups.iter().enumerate() {
            let last = k + 1 == groups.len();
            let digits = if last {
                *g
            } else {
                g.strip_prefix('x')
                    .ok_or(BadTilePath("index group without x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadTilePath("index groups are three digits"));
            }
            let d: u64 = digits.parse().map_err(|_| BadTilePath("index"))?;
            index = index
                .checked_mul(1000)
                .and_then(|i| i.checked_add(d))
                .ok_or(BadTilePath("index overflows"))?;
        }
        let tile = TilePath {
            level,
            index,
            width,
        };
        // Canonical form only: `x000/001` and the like name no tile.
        if tile.path() != format!("tile/{rest}") {
            return Err(BadTilePath("not canonical"));
        }
        Ok(tile)
    }

    /// The canonical path, `tile/…`.
    pub fn path(&self) -> String {
        let mut n = self.index;
        let mut s = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            s = format!("x{:03}/{s}", n % 1000);
        }
        let l = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_owned(),
        };
        if self.width == TILE_WIDTH {
            format!("tile/{l}/{s}")
        } else {
            format!("tile/{l}/{s}.p/{}", self.width)
        }
    }

    /// Whether the tile is full (immutable).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Number of items (entries, or hashes at tree level 8·L) a tree of `size` has at this
    /// tile's level.
    pub fn available(&self, size: u64) -> u64 {
        let level = self.level.unwrap_or(0);
        size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
            .unwrap_or(0)
    }

    /// Whether a tree of `size` leaves holds this tile at this width.
    pub fn exists_in(&self, size: u64) -> bool {
        self.index
            .checked_mul(TILE_WIDTH)
            .and_then(|s| s.checked_add(self.width))
            .is_some_and(|end| end <= self.available(size))
    }

    /// Every tile (full or the partial at the right edge) that changes when a tree grows
    /// from `old` to `new` leaves: hash tiles of every level and entry bundles.
    pub fn changed(old: u64, new: u64) -> Vec<TilePath> {
        let mut out = Vec::new();
        for level in 0..=MAX_TILE_LEVEL {
            let shift = u32::from(level) * u32::from(TILE_HEIGHT);
            let (o, n) = (
                old.checked_shr(shift).unwrap_or(0),
                new.checked_shr(shift).unwrap_or(0),
            );
            if n == 0 {
                break;
            }
            if o == n {
                continue;
            }
            let mut t = o / TILE_WIDTH;
            while t * TILE_WIDTH < n {
                let width = (n - t * TILE_WIDTH).min(TILE_WIDTH);
                out.push(TilePath {
                    level: Some(level),
                    index: t,
                    width,
                });
                if level == 0 {
                    out.push(TilePath {
                        level: None,
                        index: t,
                        width,
                    });
                }
                t += 1;
            }
        }
        out
    }
}

/// Serialises an entry bundle: each entry as a 2-byte big-endian length and its bytes.
pub fn entry_bundle(entries: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| format!("entry of {} bytes", e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Reads the data of a tile from the store; `None` if the tree does not hold it.
pub async fn read_tile(
    store: &dyn LogStore,
    tile: TilePath,
    size: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if !tile.exists_in(size) {
        return Ok(None);
    }
    let start = tile.index * TILE_WIDTH;
    let end = start + tile.width;
    match tile.level {
        None => {
            let entries = store.entries(start, end).await?;
            if entries.len() as u64 != tile.width {
                return Err(StoreError::Corrupt(format!(
                    "entries {start}..{end} missing"
                )));
            }
            entry_bundle(&entries)
                .map(Some)
                .map_err(StoreError::Corrupt)
        }
        Some(level) => {
            let hashes = store.level_hashes(level * TILE_HEIGHT, start, end).await?;
            if hashes.len() as u64 != tile.width {
                return Err(StoreError::Corrupt(format!(
                    "hashes {start}..{end} of level {} missing",
                    level * TILE_HEIGHT
                )));
            }
            Ok(Some(hashes.iter().flat_map(|h| h.0).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lucent_verifier::merkle::MemoryTree;

    #[test]
    fn frontier_matches_memory_tree() {
        let mut f = Frontier::default();
        let mut m = MemoryTree::new();
        for batch in [1usize, 2, 3, 250, 7, 1, 300] {
            let leaves: Vec<LeafHash> = (0..batch)
                .map(|i| LeafHash::of_entry(format!("{}-{i}", m.size().0).as_bytes()))
                .collect();
            f.append(&leaves).unwrap();
            for l in leaves {
                m.push(l);
            }
            assert_eq!(f.root().unwrap(), m.root());
            assert!(f.hashes.len() <= 64);
        }
    }

    #[test]
    fn tile_paths() {
        for (p, want) in [
            ("0/000", Some((Some(0), 0, 256))),
            ("1/x001/234", Some((Some(1), 1234, 256))),
            ("entries/005.p/17", Some((None, 5, 17))),
            ("63/000.p/255", Some((Some(63), 0, 255))),
        ] {
            let t = TilePath::parse(p).unwrap();
            assert_eq!(Some((t.level, t.index, t.width)), want, "{p}");
            assert_eq!(t.path(), format!("tile/{p}"));
        }
        for bad in [
            "64/000",
            "00/000",
            "0/0",
            "0/1234",
            "0/x000/001",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/08",
            "data/000",
            "0/000/",
            "0",
            "-1/000",
            "0/+01",
            "entries/000.p/",
            "0/x1000/000",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn changed_tiles() {
        let c = TilePath::changed(0, 3);
        assert_eq!(c.len(), 2);
        assert!(c.contains(&TilePath {
            level: Some(0),
            index: 0,
            width: 3
        }));
        let c = TilePath::changed(250, 256 * 256 + 1);
        assert!(c.contains(&TilePath {
            level: Some(1),
            index: 0,
            width: 256
        }));
        assert!(c.contains(&TilePath {
            level: Some(2),
            index: 0,
            width: 1
        }));
        assert!(c.contains(&TilePath {
            level: None,
            index: 256,
            width: 1
        }));
    }
}
