//! C2SP `tlog-tiles`: tile paths, entry bundles, and the compact range that is the tree's
//! right edge. The log writes tiles with these definitions and every reader (the auditor,
//! the end-to-end checks) reads them back with the same ones.
//!
//! - [`TilePath`]: `tile/<L>/<N>[.p/<W>]` (hash tiles) and `tile/entries/<N>[.p/<W>]` (entry
//!   bundles), parsed strictly so that every tile has exactly one path, and converted to and
//!   from `tlog_tiles`' [`Tile`] (which writes Go sumdb paths with the height in them).
//! - [`encode_bundle`] and [`decode_bundle`]: an entry bundle is each entry as a 2-byte
//!   big-endian length and its bytes, so no entry can be larger than [`MAX_ENTRY_BYTES`].
//! - [`CompactRange`]: the roots of the perfect subtrees covering a tree's leaves, enough to
//!   extend the tree and compute its RFC 6962 root with O(log n) state. The log's sequencer
//!   extends one to learn every new stored hash it writes to tiles; a monitor extends one to
//!   recompute the root of everything it read.
//!
//! Spec: <https://c2sp.org/tlog-tiles>.
//!
//! ```
//! use lucent_verifier::merkle::{LeafHash, MemoryTree};
//! use lucent_verifier::tiles::{decode_bundle, encode_bundle, CompactRange, TilePath};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let entries = [&b"first"[..], b"second", b"third"];
//! // The log serves the first (partial) entry bundle of a three-entry tree here...
//! let tile = TilePath::in_tree(None, 0, 3).ok_or("no such tile")?;
//! assert_eq!(tile.path(), "tile/entries/000.p/3");
//! assert_eq!(TilePath::parse("entries/000.p/3")?, tile);
//! let data = encode_bundle(&entries)?;
//!
//! // ...and a reader splits it and recomputes the root with a compact range.
//! let read = decode_bundle(&data, 3)?;
//! let mut range = CompactRange::new();
//! range.extend(read.iter().map(|e| LeafHash::of_entry(e)))?;
//! let mut tree = MemoryTree::new();
//! entries.iter().for_each(|e| tree.push_entry(e));
//! assert_eq!(range.root(), tree.root());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tlog_tiles::Tile;

use crate::merkle::{node_hash, Hash, LeafHash, HASH_LEN};

/// Height of every tile: C2SP `tlog-tiles` fixes it at 8.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes or entries in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Highest tile level (C2SP: levels 0 to 63).
pub const MAX_TILE_LEVEL: u8 = 63;
/// Largest entry an entry bundle can carry: its length is a 2-byte big-endian prefix.
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;
/// Size of a full hash tile: 256 hashes.
pub const MAX_HASH_TILE_BYTES: usize = TILE_WIDTH as usize * HASH_LEN;
/// Size of the largest entry bundle: 256 entries of [`MAX_ENTRY_BYTES`] each.
pub const MAX_BUNDLE_BYTES: usize = TILE_WIDTH as usize * (2 + MAX_ENTRY_BYTES);
/// Longest tile path [`TilePath::parse`] reads; the longest canonical one is 47 bytes
/// (`entries/x018/x446/x744/x073/x709/x551/615.p/255`).
const MAX_TILE_PATH_BYTES: usize = 64;

/// Why a tile path, or a tile's coordinates, name no C2SP tile.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TilePathError {
    /// Longer than any canonical tile path.
    #[error("tile path is {len} bytes, longer than any tile's")]
    TooLong {
        /// Length of the path.
        len: usize,
    },
    /// No `/` after the level.
    #[error("tile path has no index")]
    NoIndex,
    /// The level is neither `entries` nor a canonical decimal number.
    #[error("tile level is neither `entries` nor a canonical number")]
    BadLevel,
    /// The level is above [`MAX_TILE_LEVEL`].
    #[error("tile level {level} is above {MAX_TILE_LEVEL}")]
    LevelTooHigh {
        /// The level.
        level: u64,
    },
    /// The index is not `x`-prefixed groups of three digits ending in three digits.
    #[error("tile index is not groups of three digits (`x001/234`)")]
    BadIndex,
    /// The index does not fit in 64 bits.
    #[error("tile index does not fit in 64 bits")]
    IndexOverflow,
    /// The width after `.p/` is not a canonical decimal number.
    #[error("partial tile width is not a canonical number")]
    BadWidth,
    /// A partial width outside 1 to 255 (a full tile has no `.p/`).
    #[error("partial tile width {width} is not 1 to 255")]
    PartialWidth {
        /// The width.
        width: u64,
    },
    /// A width outside 1 to [`TILE_WIDTH`].
    #[error("tile width {width} is not 1 to {TILE_WIDTH}")]
    Width {
        /// The width.
        width: u64,
    },
    /// The path reads as a tile but is not that tile's one canonical path.
    #[error("tile path is not canonical")]
    NotCanonical,
    /// A `tlog_tiles` tile of another height than [`TILE_HEIGHT`].
    #[error("tile of height {height}: C2SP tiles have height {TILE_HEIGHT}")]
    Height {
        /// The tile's height.
        height: u8,
    },
    /// A `tlog_tiles` data tile above level 0 (entry bundles are level 0).
    #[error("data tile at level {level}: entry bundles are at level 0")]
    DataLevel {
        /// The tile's level.
        level: u8,
    },
}

/// A C2SP `tlog-tiles` tile: a hash tile (`tile/<L>/<N>[.p/<W>]`) or an entry bundle
/// (`tile/entries/<N>[.p/<W>]`). It always names a tile that can exist: level 0 to 63,
/// width 1 to 256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    level: Option<u8>,
    index: u64,
    width: u64,
}

impl TilePath {
    /// The hash tile `index` of tile level `level` (tree level `8·level`), `width` hashes.
    pub fn hashes(level: u8, index: u64, width: u64) -> Result<Self, TilePathError> {
        if level > MAX_TILE_LEVEL {
            return Err(TilePathError::LevelTooHigh {
                level: u64::from(level),
            });
        }
        Self::new(Some(level), index, width)
    }

    /// The entry bundle `index`, `width` entries.
    pub fn entries(index: u64, width: u64) -> Result<Self, TilePathError> {
        Self::new(None, index, width)
    }

    fn new(level: Option<u8>, index: u64, width: u64) -> Result<Self, TilePathError> {
        if !(1..=TILE_WIDTH).contains(&width) {
            return Err(TilePathError::Width { width });
        }
        Ok(TilePath {
            level,
            index,
            width,
        })
    }

    /// Tile `index` at `level` (`None`: the entry bundles) as a tree of `size` leaves has
    /// it: full, or partial at the right edge; `None` if the tree has nothing of it yet.
    pub fn in_tree(level: Option<u8>, index: u64, size: u64) -> Option<Self> {
        let level_ok = level.is_none_or(|l| l <= MAX_TILE_LEVEL);
        let start = index.checked_mul(TILE_WIDTH)?;
        let items = items_at(level.unwrap_or(0), size);
        if !level_ok || items <= start {
            return None;
        }
        Some(TilePath {
            level,
            index,
            width: (items - start).min(TILE_WIDTH),
        })
    }

    /// The hash tile level, or `None` for an entry bundle.
    pub fn level(&self) -> Option<u8> {
        self.level
    }

    /// Whether this is an entry bundle.
    pub fn is_entries(&self) -> bool {
        self.level.is_none()
    }

    /// The tile's index within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes or entries: 1 to 256.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// Whether the tile is full (and so never changes).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Positions the tile covers at its level: entry indexes for a bundle, node indexes at
    /// tree level `8·L` for a hash tile. `None` if they do not fit in 64 bits.
    pub fn items(&self) -> Option<Range<u64>> {
        let start = self.index.checked_mul(TILE_WIDTH)?;
        let end = start.checked_add(self.width)?;
        Some(start..end)
    }

    /// Whether a tree of `size` leaves holds this tile at this width.
    pub fn exists_in(&self, size: u64) -> bool {
        self.items()
            .is_some_and(|r| r.end <= items_at(self.level.unwrap_or(0), size))
    }

    /// Parses the part of a path after `tile/`, strictly: only the canonical path of a tile
    /// is accepted (`x001/234` index groups, `.p/<W>` with a width of 1 to 255 only for a
    /// partial tile, levels 0 to 63 without leading zeros), so every tile has one path.
    pub fn parse(rest: &str) -> Result<Self, TilePathError> {
        if rest.len() > MAX_TILE_PATH_BYTES {
            return Err(TilePathError::TooLong { len: rest.len() });
        }
        let (head, tail) = rest.split_once('/').ok_or(TilePathError::NoIndex)?;
        let level = if head == "entries" {
            None
        } else {
            let l = canonical_number(head, 2).ok_or(TilePathError::BadLevel)?;
            let l = u8::try_from(l)
                .ok()
                .filter(|&l| l <= MAX_TILE_LEVEL)
                .ok_or(TilePathError::LevelTooHigh { level: l })?;
            Some(l)
        };
        let (index_part, width) = match tail.split_once(".p/") {
            Some((i, w)) => {
                let w = canonical_number(w, 3).ok_or(TilePathError::BadWidth)?;
                if !(1..TILE_WIDTH).contains(&w) {
                    return Err(TilePathError::PartialWidth { width: w });
                }
                (i, w)
            }
            None => (tail, TILE_WIDTH),
        };
        let mut groups = index_part.split('/').peekable();
        let mut index: u64 = 0;
        while let Some(g) = groups.next() {
            let digits = if groups.peek().is_some() {
                g.strip_prefix('x').ok_or(TilePathError::BadIndex)?
            } else {
                g
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TilePathError::BadIndex);
            }
            let d: u64 = digits.parse().map_err(|_| TilePathError::BadIndex)?;
            index = index
                .checked_mul(1000)
                .and_then(|i| i.checked_add(d))
                .ok_or(TilePathError::IndexOverflow)?;
        }
        let tile = TilePath {
            level,
            index,
            width,
        };
        // `x000/001` reads as index 1 but is not its path: only the canonical form names a tile.
        if tile.path().strip_prefix("tile/") != Some(rest) {
            return Err(TilePathError::NotCanonical);
        }
        Ok(tile)
    }

    /// The canonical path, `tile/…`.
    pub fn path(&self) -> String {
        self.to_string()
    }

    /// Every tile that changes when a tree grows from `old` to `new` leaves, full or the
    /// partial one at the right edge: the hash tiles of every level and the entry bundles.
    pub fn changed(old: u64, new: u64) -> Vec<TilePath> {
        let mut out = Vec::new();
        for level in 0..=MAX_TILE_LEVEL {
            let (o, n) = (items_at(level, old), items_at(level, new));
            if n == 0 {
                break;
            }
            if o >= n {
                continue;
            }
            for t in o / TILE_WIDTH..=(n - 1) / TILE_WIDTH {
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
            }
        }
        out
    }
}

/// Number of hashes a tree of `size` leaves has at tree level `8·level` (for level 0, its
/// entries).
fn items_at(level: u8, size: u64) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

/// A decimal number of at most `max_digits` digits without leading zeros.
fn canonical_number(s: &str, max_digits: usize) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= max_digits
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tile/")?;
        match self.level {
            Some(l) => write!(f, "{l}/")?,
            None => f.write_str("entries/")?,
        }
        // Groups of three digits, most significant first, all but the last prefixed `x`.
        let mut groups = [0u64; 7];
        let (mut n, mut count) = (self.index, 0);
        loop {
            groups[count] = n % 1000;
            count += 1;
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (k, g) in groups[..count].iter().rev().enumerate() {
            let prefix = if k + 1 < count { "x" } else { "" };
            let sep = if k + 1 < count { "/" } else { "" };
            write!(f, "{prefix}{g:03}{sep}")?;
        }
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

impl From<TilePath> for Tile {
    fn from(t: TilePath) -> Tile {
        // A TilePath always has a level of at most 63 and a width of 1 to 256, which is
        // what `Tile::new` requires of a height-8 tile.
        let width = u32::try_from(t.width).unwrap_or(1 << TILE_HEIGHT);
        let mut tile = Tile::new(TILE_HEIGHT, t.level.unwrap_or(0), t.index, width, false);
        if t.level.is_none() {
            tile.set_is_data();
        }
        tile
    }
}

impl TryFrom<Tile> for TilePath {
    type Error = TilePathError;

    fn try_from(t: Tile) -> Result<Self, TilePathError> {
        if t.height() != TILE_HEIGHT {
            return Err(TilePathError::Height { height: t.height() });
        }
        let level = if t.is_data() {
            if t.level() != 0 {
                return Err(TilePathError::DataLevel { level: t.level() });
            }
            None
        } else {
            Some(t.level())
        };
        if t.level() > MAX_TILE_LEVEL {
            return Err(TilePathError::LevelTooHigh {
                level: u64::from(t.level()),
            });
        }
        TilePath::new(level, t.level_index(), u64::from(t.width()))
    }
}

/// Why an entry bundle could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// An entry longer than a 2-byte length can say.
    #[error("entry {position} is {len} bytes, the limit is {MAX_ENTRY_BYTES}")]
    EntryTooLarge {
        /// Position of the entry in the bundle.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// The data ends inside an entry's length prefix.
    #[error("entry bundle ends inside the length of entry {position}")]
    TruncatedLength {
        /// Position of the entry in the bundle.
        position: usize,
    },
    /// The data ends inside an entry.
    #[error("entry {position} of the bundle says {len} bytes, only {left} are left")]
    TruncatedEntry {
        /// Position of the entry in the bundle.
        position: usize,
        /// Length its prefix says.
        len: usize,
        /// Bytes left in the data.
        left: usize,
    },
    /// Fewer entries than the tile's width.
    #[error("entry bundle holds {got} entries, want {want}")]
    TooFewEntries {
        /// Entries read.
        got: usize,
        /// Entries the tile has.
        want: usize,
    },
    /// Bytes after the last entry the tile has.
    #[error("entry bundle has {extra} bytes after its {want} entries")]
    TrailingBytes {
        /// Entries the tile has.
        want: usize,
        /// Bytes left over.
        extra: usize,
    },
}

/// Writes an entry bundle: each entry as a 2-byte big-endian length and its bytes. Refuses
/// an entry larger than [`MAX_ENTRY_BYTES`] (the log must never accept one).
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, BundleError> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for (position, e) in entries.iter().enumerate() {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| BundleError::EntryTooLarge {
            position,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Reads an entry bundle of exactly `count` entries (the tile's width); anything else in
/// the data (a cut-short entry, fewer entries, bytes after the last) is an error.
pub fn decode_bundle(data: &[u8], count: usize) -> Result<Vec<Vec<u8>>, BundleError> {
    // Each entry takes at least its 2-byte prefix, so the data bounds the allocation.
    let mut out = Vec::with_capacity(count.min(data.len() / 2));
    let mut rest = data;
    while out.len() < count {
        let position = out.len();
        if rest.is_empty() {
            return Err(BundleError::TooFewEntries {
                got: position,
                want: count,
            });
        }
        let (prefix, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(BundleError::TruncatedLength { position })?;
        let len = usize::from(u16::from_be_bytes(*prefix));
        if tail.len() < len {
            return Err(BundleError::TruncatedEntry {
                position,
                len,
                left: tail.len(),
            });
        }
        let (entry, tail) = tail.split_at(len);
        out.push(entry.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(BundleError::TrailingBytes {
            want: count,
            extra: rest.len(),
        });
    }
    Ok(out)
}

/// Why a compact range could not be built or extended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CompactRangeError {
    /// The number of hashes is not one per set bit of the size.
    #[error("compact range for size {size} has {got} hashes, want {want}")]
    Shape {
        /// Claimed size.
        size: u64,
        /// Hashes given.
        got: usize,
        /// Hashes a range of that size has.
        want: usize,
    },
    /// A stored hash is not 32 bytes of hex.
    #[error("compact range hash {position} is not 64 hex digits")]
    HashEncoding {
        /// Position of the hash, left to right.
        position: usize,
    },
    /// The tree would grow past 2^64 − 1 leaves.
    #[error("a tree of {size} leaves cannot take {more} more")]
    Full {
        /// Leaves now.
        size: u64,
        /// Leaves asked to add.
        more: u64,
    },
}

/// A hash the tree stores, in `tlog_tiles`' coordinates: the root of the perfect subtree
/// of `2^level` leaves starting at leaf `index · 2^level`. Hash tile `L` holds the stored
/// hashes of tree level `8·L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHash {
    /// Tree level (0: the leaf hashes).
    pub level: u8,
    /// Index at that level.
    pub index: u64,
    /// The hash.
    pub hash: Hash,
}

impl From<StoredHash> for (u8, u64, Hash) {
    fn from(s: StoredHash) -> Self {
        (s.level, s.index, s.hash)
    }
}

/// The roots of the perfect subtrees covering a tree's leaves, left to right (one per set
/// bit of the size, largest first): enough to extend the tree and compute its root.
///
/// Serialised (for state files) as `{"size": <leaves>, "hashes": ["<hex>", …]}`; reading
/// it back checks the shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredRange", into = "StoredRange")]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

/// The JSON form of a [`CompactRange`].
#[derive(Serialize, Deserialize)]
struct StoredRange {
    size: u64,
    hashes: Vec<String>,
}

impl From<CompactRange> for StoredRange {
    fn from(r: CompactRange) -> Self {
        StoredRange {
            size: r.size,
            hashes: r.hashes.iter().map(Hash::to_hex).collect(),
        }
    }
}

impl TryFrom<StoredRange> for CompactRange {
    type Error = CompactRangeError;

    fn try_from(s: StoredRange) -> Result<Self, CompactRangeError> {
        let hashes = s
            .hashes
            .iter()
            .enumerate()
            .map(|(position, h)| {
                Hash::from_hex(h).map_err(|_| CompactRangeError::HashEncoding { position })
            })
            .collect::<Result<Vec<_>, _>>()?;
        CompactRange::from_parts(s.size, hashes)
    }
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its size and subtree roots (left to right), checking the shape.
    /// The roots are the stored hashes at [`CompactRange::root_positions`].
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, CompactRangeError> {
        let want = size.count_ones() as usize;
        if hashes.len() != want {
            return Err(CompactRangeError::Shape {
                size,
                got: hashes.len(),
                want,
            });
        }
        Ok(CompactRange { size, hashes })
    }

    /// Where the subtree roots of a tree of `size` leaves are stored, left to right, as
    /// (tree level, index): read these hashes to rebuild the range with
    /// [`CompactRange::from_parts`].
    pub fn root_positions(size: u64) -> Vec<(u8, u64)> {
        (0..64u8)
            .rev()
            .filter(|&l| size >> l & 1 == 1)
            .map(|l| (l, (size >> l) - 1))
            .collect()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, left to right.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf.
    pub fn push(&mut self, leaf: LeafHash) -> Result<(), CompactRangeError> {
        self.check_room(1)?;
        self.push_unchecked(leaf, |_| {});
        Ok(())
    }

    /// Appends leaves in order; nothing is appended if they do not all fit.
    pub fn extend<I>(&mut self, leaves: I) -> Result<(), CompactRangeError>
    where
        I: IntoIterator<Item = LeafHash>,
        I::IntoIter: ExactSizeIterator,
    {
        let leaves = leaves.into_iter();
        self.check_room(leaves.len())?;
        for leaf in leaves {
            self.push_unchecked(leaf, |_| {});
        }
        Ok(())
    }

    /// Appends leaves in order and returns every hash the tree stores that they create
    /// (for each leaf, its own hash and then each subtree it completes, lowest first): what
    /// a log writes to its hash tiles. Nothing is appended if they do not all fit.
    pub fn append(&mut self, leaves: &[LeafHash]) -> Result<Vec<StoredHash>, CompactRangeError> {
        self.check_room(leaves.len())?;
        let mut out = Vec::with_capacity(leaves.len() * 2);
        for leaf in leaves {
            self.push_unchecked(*leaf, |s| out.push(s));
        }
        Ok(out)
    }

    /// The RFC 6962 root of the tree.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return Hash::empty_tree();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }

    fn check_room(&self, more: usize) -> Result<(), CompactRangeError> {
        let more = u64::try_from(more).unwrap_or(u64::MAX);
        match self.size.checked_add(more) {
            Some(_) => Ok(()),
            None => Err(CompactRangeError::Full {
                size: self.size,
                more,
            }),
        }
    }

    /// Appends a leaf the caller checked there is room for.
    fn push_unchecked(&mut self, leaf: LeafHash, mut stored: impl FnMut(StoredHash)) {
        let n = self.size;
        let mut h = leaf.0;
        stored(StoredHash {
            level: 0,
            index: n,
            hash: h,
        });
        // Each trailing one bit of the size is a perfect subtree of the height the new node
        // has reached: merge them, left to right.
        let mut level = 0u8;
        while n >> level & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                break;
            };
            h = node_hash(&left, &h);
            level += 1;
            stored(StoredHash {
                level,
                index: n >> level,
                hash: h,
            });
        }
        self.hashes.push(h);
        self.size = n + 1;
    }
}

/// Stored hashes by their `tlog_tiles` stored-hash index, read back for `tlog_tiles`' proof
/// and root code (the log server fills one from its database; tests from `tlog_tiles`).
#[derive(Debug, Clone, Default)]
pub struct StoredHashes(pub std::collections::HashMap<u64, tlog_tiles::Hash>);

impl tlog_tiles::HashReader for StoredHashes {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::merkle::MemoryTree;

    fn tile(level: Option<u8>, index: u64, width: u64) -> TilePath {
        TilePath::new(level, index, width).unwrap()
    }

    #[test]
    fn tile_paths() {
        let too_long = "0/000".repeat(20);
        for (p, want) in [
            ("0/000", (Some(0), 0, 256)),
            ("1/x001/234", (Some(1), 1234, 256)),
            ("entries/005.p/17", (None, 5, 17)),
            ("63/000.p/255", (Some(63), 0, 255)),
            (
                "entries/x018/x446/x744/x073/x709/x551/615.p/255",
                (None, u64::MAX, 255),
            ),
        ] {
            let t = TilePath::parse(p).unwrap();
            assert_eq!((t.level(), t.index(), t.width()), want, "{p}");
            assert_eq!(t.path(), format!("tile/{p}"));
        }
        for (bad, why) in [
            ("64/000", TilePathError::LevelTooHigh { level: 64 }),
            ("99/000", TilePathError::LevelTooHigh { level: 99 }),
            ("00/000", TilePathError::BadLevel),
            ("100/000", TilePathError::BadLevel),
            ("0/0", TilePathError::BadIndex),
            ("0/1234", TilePathError::BadIndex),
            ("0/x000/001", TilePathError::NotCanonical),
            ("0/001.p/0", TilePathError::PartialWidth { width: 0 }),
            ("0/001.p/256", TilePathError::PartialWidth { width: 256 }),
            ("0/001.p/08", TilePathError::BadWidth),
            ("data/000", TilePathError::BadLevel),
            ("0/000/", TilePathError::BadIndex),
            ("0", TilePathError::NoIndex),
            ("-1/000", TilePathError::BadLevel),
            ("0/+01", TilePathError::BadIndex),
            ("entries/000.p/", TilePathError::BadWidth),
            ("0/x1000/000", TilePathError::BadIndex),
            (
                "0/x018/x446/x744/x073/x709/x551/616",
                TilePathError::IndexOverflow,
            ),
            (too_long.as_str(), TilePathError::TooLong { len: 100 }),
        ] {
            assert_eq!(TilePath::parse(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn constructors_refuse_impossible_tiles() {
        assert_eq!(
            TilePath::hashes(64, 0, 1),
            Err(TilePathError::LevelTooHigh { level: 64 })
        );
        assert_eq!(
            TilePath::entries(0, 0),
            Err(TilePathError::Width { width: 0 })
        );
        assert_eq!(
            TilePath::entries(0, 257),
            Err(TilePathError::Width { width: 257 })
        );
        assert!(TilePath::hashes(63, u64::MAX, 256).is_ok());
    }

    #[test]
    fn tiles_in_a_tree() {
        assert_eq!(TilePath::in_tree(None, 0, 0), None);
        assert_eq!(TilePath::in_tree(None, 0, 3), Some(tile(None, 0, 3)));
        assert_eq!(
            TilePath::in_tree(Some(0), 1, 600),
            Some(tile(Some(0), 1, 256))
        );
        assert_eq!(
            TilePath::in_tree(Some(0), 2, 600),
            Some(tile(Some(0), 2, 88))
        );
        assert_eq!(
            TilePath::in_tree(Some(1), 0, 600),
            Some(tile(Some(1), 0, 2))
        );
        assert_eq!(TilePath::in_tree(Some(2), 0, 600), None);
        assert_eq!(TilePath::in_tree(Some(64), 0, u64::MAX), None);
        assert_eq!(TilePath::in_tree(None, u64::MAX, u64::MAX), None);
        let t = tile(Some(0), 2, 88);
        assert!(t.exists_in(600) && t.exists_in(601) && !t.exists_in(599));
        assert_eq!(t.items(), Some(512..600));
        assert!(!tile(Some(0), u64::MAX, 256).exists_in(u64::MAX));
        assert!(!tile(Some(8), 0, 1).exists_in(u64::MAX));
        assert!(tile(Some(7), 0, 1).exists_in(u64::MAX));
    }

    #[test]
    fn changed_tiles() {
        assert_eq!(
            TilePath::changed(0, 3),
            vec![tile(Some(0), 0, 3), tile(None, 0, 3)]
        );
        assert!(TilePath::changed(5, 5).is_empty());
        let c = TilePath::changed(250, 256 * 256 + 1);
        assert!(c.contains(&tile(Some(0), 0, 256)));
        assert!(c.contains(&tile(Some(1), 0, 256)));
        assert!(c.contains(&tile(Some(2), 0, 1)));
        assert!(c.contains(&tile(None, 256, 1)));
        assert!(!c.iter().any(|t| t.level() == Some(3)));
        // Every changed tile is in the new tree at that width.
        assert!(c.iter().all(|t| t.exists_in(256 * 256 + 1)));
    }

    #[test]
    fn converts_to_and_from_tlog_tiles() {
        for (t, go, c2sp) in [
            (tile(Some(0), 0, 256), "tile/8/0/000", "tile/0/000"),
            (
                tile(Some(1), 1_234_067, 7),
                "tile/8/1/x001/x234/067.p/7",
                "tile/1/x001/x234/067.p/7",
            ),
            (tile(None, 3, 256), "tile/8/data/003", "tile/entries/003"),
            (
                tile(None, 0, 5),
                "tile/8/data/000.p/5",
                "tile/entries/000.p/5",
            ),
        ] {
            let go_tile = Tile::from(t);
            assert_eq!(go_tile.path(), go);
            assert_eq!(t.path(), c2sp);
            assert_eq!(TilePath::try_from(go_tile), Ok(t));
        }
        assert_eq!(
            TilePath::try_from(Tile::new(4, 0, 0, 16, false)),
            Err(TilePathError::Height { height: 4 })
        );
        let mut data = Tile::new(8, 1, 0, 16, false);
        data.set_is_data();
        assert_eq!(
            TilePath::try_from(data),
            Err(TilePathError::DataLevel { level: 1 })
        );
    }

    #[test]
    fn bundles_are_read_strictly() {
        let mut b = vec![0, 2, b'h', b'i', 0, 0];
        assert_eq!(decode_bundle(&b, 2).unwrap(), vec![b"hi".to_vec(), vec![]]);
        assert_eq!(encode_bundle(&[&b"hi"[..], &b""[..]]).unwrap(), b);
        assert_eq!(
            decode_bundle(&b, 3),
            Err(BundleError::TooFewEntries { got: 2, want: 3 })
        );
        assert_eq!(
            decode_bundle(&b, 1),
            Err(BundleError::TrailingBytes { want: 1, extra: 2 })
        );
        b.push(0);
        assert_eq!(
            decode_bundle(&b, 2),
            Err(BundleError::TrailingBytes { want: 2, extra: 1 })
        );
        assert_eq!(
            decode_bundle(&b, 3),
            Err(BundleError::TruncatedLength { position: 2 })
        );
        assert_eq!(
            decode_bundle(&[0, 9, 1], 1),
            Err(BundleError::TruncatedEntry {
                position: 0,
                len: 9,
                left: 1
            })
        );
        assert_eq!(decode_bundle(&[], 0).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn the_largest_entry_fits_and_one_more_byte_does_not() {
        let largest = vec![7u8; MAX_ENTRY_BYTES];
        assert_eq!(MAX_ENTRY_BYTES, 65_535);
        let data = encode_bundle(&[&largest[..], &b"x"[..]]).unwrap();
        assert_eq!(data.len(), 2 + 65_535 + 2 + 1);
        assert_eq!(
            decode_bundle(&data, 2).unwrap(),
            vec![largest, b"x".to_vec()]
        );
        let too_large = vec![7u8; MAX_ENTRY_BYTES + 1];
        assert_eq!(
            encode_bundle(&[&b"x"[..], &too_large[..]]),
            Err(BundleError::EntryTooLarge {
                position: 1,
                len: 65_536
            })
        );
    }

    #[test]
    fn full_bundle_is_the_largest() {
        let entries = vec![vec![1u8; MAX_ENTRY_BYTES]; TILE_WIDTH as usize];
        assert_eq!(encode_bundle(&entries).unwrap().len(), MAX_BUNDLE_BYTES);
    }

    #[test]
    fn compact_range_matches_memory_tree_at_every_size() {
        let (mut r, mut t) = (CompactRange::new(), MemoryTree::new());
        assert_eq!(r.root(), t.root());
        for i in 0u32..600 {
            r.push(LeafHash::of_entry(&i.to_be_bytes())).unwrap();
            t.push_entry(&i.to_be_bytes());
            assert_eq!(r.root(), t.root(), "size {}", i + 1);
            let again = CompactRange::from_parts(r.size(), r.hashes().to_vec()).unwrap();
            assert_eq!(again, r);
        }
        assert_eq!(
            CompactRange::from_parts(3, vec![Hash::empty_tree()]),
            Err(CompactRangeError::Shape {
                size: 3,
                got: 1,
                want: 2
            })
        );
    }

    #[test]
    fn compact_range_refuses_to_overflow() {
        let full = CompactRange::from_parts(u64::MAX, vec![Hash::empty_tree(); 64]).unwrap();
        let mut r = full.clone();
        let leaf = LeafHash::of_entry(b"x");
        assert_eq!(
            r.push(leaf),
            Err(CompactRangeError::Full {
                size: u64::MAX,
                more: 1
            })
        );
        assert!(r.append(&[leaf]).is_err());
        assert!(r.extend([leaf]).is_err());
        assert_eq!(r, full);
        let mut r = CompactRange::from_parts(u64::MAX - 1, vec![Hash::empty_tree(); 63]).unwrap();
        assert!(r.append(&[leaf, leaf]).is_err());
        assert_eq!(r.size(), u64::MAX - 1);
        assert_eq!(r.append(&[leaf]).unwrap().len(), 1);
        assert_eq!(r.size(), u64::MAX);
    }

    #[test]
    fn root_positions_are_the_subtree_roots() {
        assert!(CompactRange::root_positions(0).is_empty());
        assert_eq!(CompactRange::root_positions(6), vec![(2, 0), (1, 2)]);
        assert_eq!(
            CompactRange::root_positions(7),
            vec![(2, 0), (1, 2), (0, 6)]
        );
        assert_eq!(CompactRange::root_positions(u64::MAX).len(), 64);
    }

    #[test]
    fn compact_range_json_keeps_its_shape() {
        let mut r = CompactRange::new();
        r.extend((0u8..3).map(|i| LeafHash::of_entry(&[i])))
            .unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let h = r.hashes();
        assert_eq!(
            json,
            format!(r#"{{"size":3,"hashes":["{}","{}"]}}"#, h[0], h[1])
        );
        assert_eq!(serde_json::from_str::<CompactRange>(&json).unwrap(), r);
        let wrong_shape = format!(r#"{{"size":4,"hashes":["{}","{}"]}}"#, h[0], h[1]);
        assert!(serde_json::from_str::<CompactRange>(&wrong_shape).is_err());
        let not_hex = format!(r#"{{"size":3,"hashes":["{}","zz"]}}"#, h[0]);
        assert!(serde_json::from_str::<CompactRange>(&not_hex).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn append_matches_memory_tree_and_tlog_tiles(
            batches in proptest::collection::vec(0usize..300, 1..8),
        ) {
            let (mut r, mut t) = (CompactRange::new(), MemoryTree::new());
            // The stored hashes as `tlog_tiles` computes them (what the log wrote before it used a
            // compact range).
            let mut stored = StoredHashes::default();
            let mut leaves_so_far = Vec::new();
            for batch in batches {
                let leaves: Vec<LeafHash> = (0..batch)
                    .map(|i| LeafHash::of_entry(format!("{}-{i}", r.size()).as_bytes()))
                    .collect();
                let start = r.size();
                let got = r.append(&leaves).unwrap();
                let mut want = Vec::new();
                for (k, leaf) in leaves.iter().enumerate() {
                    let n = start + k as u64;
                    let new = tlog_tiles::stored_hashes_for_record_hash(
                        n,
                        leaf.0.to_tlog(),
                        &stored,
                    )
                    .unwrap();
                    let base = tlog_tiles::stored_hash_index(0, n);
                    for (level, h) in new.into_iter().enumerate() {
                        stored.0.insert(base + level as u64, h);
                        let level = u8::try_from(level).unwrap();
                        want.push(StoredHash { level, index: n >> level, hash: Hash::from(h) });
                    }
                    t.push(*leaf);
                    leaves_so_far.push(*leaf);
                }
                prop_assert_eq!(&got, &want);
                prop_assert_eq!(r.root(), t.root());
                prop_assert_eq!(r.size(), t.size().0);
                // Each stored hash is the root of its subtree.
                for s in got.iter().filter(|s| s.level > 0) {
                    let first = (s.index << s.level) as usize;
                    let mut sub = MemoryTree::new();
                    for leaf in &leaves_so_far[first..first + (1 << s.level)] {
                        sub.push(*leaf);
                    }
                    prop_assert_eq!(s.hash, sub.root());
                }
                // The subtree roots are the stored hashes at `root_positions`.
                let by_position: HashMap<(u8, u64), Hash> = stored
                    .0
                    .iter()
                    .map(|(i, h)| (tlog_tiles::split_stored_hash_index(*i), Hash::from(*h)))
                    .collect();
                let roots: Vec<Hash> = CompactRange::root_positions(r.size())
                    .iter()
                    .map(|p| by_position[p])
                    .collect();
                prop_assert_eq!(CompactRange::from_parts(r.size(), roots).unwrap(), r.clone());
                let mut copy = r.clone();
                prop_assert!(copy.push(LeafHash::of_entry(b"next")).is_ok());
            }
        }

        #[test]
        fn tile_paths_round_trip(
            level in proptest::option::of(0u8..=MAX_TILE_LEVEL),
            index in any::<u64>(),
            width in 1u64..=TILE_WIDTH,
        ) {
            let t = TilePath::new(level, index, width).unwrap();
            let path = t.path();
            prop_assert_eq!(TilePath::parse(path.strip_prefix("tile/").unwrap()), Ok(t));
            prop_assert_eq!(TilePath::try_from(Tile::from(t)), Ok(t));
        }

        #[test]
        fn bundles_round_trip(entries in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..600), 0..20)
        ) {
            let data = encode_bundle(&entries).unwrap();
            prop_assert_eq!(&decode_bundle(&data, entries.len()).unwrap(), &entries);
            if !data.is_empty() {
                prop_assert!(decode_bundle(&data[..data.len() - 1], entries.len()).is_err());
            }
        }
    }
}
