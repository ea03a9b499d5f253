//! A reader for GGUF, llama.cpp's model file format (versions 2 and 3).
//!
//! It parses the header, the metadata key/value pairs and the tensor directory from bytes in
//! memory, borrowing tensor data without copying. Every count and length is checked against the
//! bytes that remain, so a hostile file yields a [`GgufError`], never a panic or a huge
//! allocation. Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

use std::collections::BTreeMap;

use super::quant::{self, GgmlType};

/// The four magic bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Tensor data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a GGML tensor can have.
pub const MAX_DIMS: u32 = 4;
/// Deepest nesting of metadata arrays we accept (GGUF writers never nest more than once).
const MAX_ARRAY_DEPTH: u32 = 2;

/// Why a GGUF file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file: magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// A GGUF version this reader does not implement.
    #[error("unsupported GGUF version {0} (supported: 2, 3)")]
    UnsupportedVersion(u32),
    /// The file ended while reading `what` at byte `offset`.
    #[error("GGUF truncated at byte {offset} while reading {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where the file ended.
        offset: usize,
    },
    /// A metadata value type code outside the spec.
    #[error("unknown GGUF metadata value type {code} for key {key:?}")]
    BadValueType {
        /// The key whose value has the bad type.
        key: String,
        /// The type code.
        code: u32,
    },
    /// A string that is not UTF-8.
    #[error("GGUF string at byte {offset} is not UTF-8")]
    BadString {
        /// Where the string starts.
        offset: usize,
    },
    /// Metadata arrays nested deeper than we accept.
    #[error("GGUF metadata array for key {0:?} is nested too deeply")]
    NestedTooDeep(String),
    /// The same metadata key twice.
    #[error("duplicate GGUF metadata key {0:?}")]
    DuplicateKey(String),
    /// The same tensor name twice.
    #[error("duplicate GGUF tensor {0:?}")]
    DuplicateTensor(String),
    /// A tensor with zero or more than [`MAX_DIMS`] dimensions, or a zero-sized dimension.
    #[error("GGUF tensor {name:?} has invalid dimensions {dims:?}")]
    BadDims {
        /// The tensor.
        name: String,
        /// Its dimensions as written (GGML order: fastest-varying first).
        dims: Vec<u64>,
    },
    /// A tensor type this crate cannot dequantise.
    #[error("GGUF tensor {name:?} has unsupported type code {code}")]
    UnsupportedType {
        /// The tensor.
        name: String,
        /// The GGML type code.
        code: u32,
    },
    /// A row length that is not a multiple of the type's block size.
    #[error("GGUF tensor {name:?}: row of {row} elements is not a multiple of block size {block}")]
    RowNotBlockAligned {
        /// The tensor.
        name: String,
        /// Elements per row.
        row: u64,
        /// Elements per block.
        block: u64,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error("GGUF alignment {0} is not a power of two")]
    BadAlignment(u64),
    /// A tensor's data lies (partly) outside the file, or is misaligned.
    #[error("GGUF tensor {name:?} data [{start}, {end}) lies outside the data section of {len} bytes or is misaligned")]
    TensorOutOfBounds {
        /// The tensor.
        name: String,
        /// Start offset relative to the data section.
        start: u64,
        /// End offset relative to the data section.
        end: u64,
        /// Length of the data section.
        len: u64,
    },
    /// A required metadata key is missing.
    #[error("GGUF metadata key {0:?} is missing")]
    MissingKey(String),
    /// A metadata key has a different type than expected.
    #[error("GGUF metadata key {key:?} has the wrong type (expected {expected})")]
    WrongType {
        /// The key.
        key: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A required tensor is missing.
    #[error("GGUF tensor {0:?} is missing")]
    MissingTensor(String),
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `float32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// `string`.
    Str(String),
    /// `array` of any one type.
    Array(Vec<MetaValue>),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float64`.
    F64(f64),
}

impl MetaValue {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float, if it is a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One entry of the tensor directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGML order: `dims[0]` varies fastest (the row length).
    pub dims: Vec<u64>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Dimensions in row-major order (slowest first), as burn and numpy write shapes.
    pub fn shape_row_major(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug)]
pub struct GgufFile<'a> {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata, by key.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Tensor directory, in file order.
    pub tensors: Vec<TensorInfo>,
    data: &'a [u8],
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], GgufError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(GgufError::Truncated {
                what,
                offset: self.bytes.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A count of items each at least `min_item_bytes` long, checked against what remains.
    fn count(&mut self, min_item_bytes: usize, what: &'static str) -> Result<usize, GgufError> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_item_bytes.max(1)) <= self.remaining());
        fits.ok_or(GgufError::Truncated {
            what,
            offset: self.bytes.len(),
        })
    }

    fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let len = self.count(1, what)?;
        let start = self.pos;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| GgufError::BadString { offset: start })
    }

    fn value(&mut self, key: &str, code: u32, depth: u32) -> Result<MetaValue, GgufError> {
        const W: &str = "metadata value";
        Ok(match code {
            0 => MetaValue::U8(self.array::<1>(W)?[0]),
            1 => MetaValue::I8(i8::from_le_bytes(self.array(W)?)),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(W)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(W)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(W)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(W)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(W)?)),
            7 => MetaValue::Bool(self.array::<1>(W)?[0] != 0),
            8 => MetaValue::Str(self.string(W)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::NestedTooDeep(key.to_owned()));
                }
                let item = self.u32("array item type")?;
                let min = match item {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8..=12 => 8,
                    _ => {
                        return Err(GgufError::BadValueType {
                            key: key.to_owned(),
                            code: item,
                        })
                    }
                };
                let n = self.count(min, "array length")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(key, item, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.array(W)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(W)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(W)?)),
            _ => {
                return Err(GgufError::BadValueType {
                    key: key.to_owned(),
                    code,
                })
            }
        })
    }
}

impl<'a> GgufFile<'a> {
    /// Parses a GGUF file held in memory. Tensor data stays in `bytes`, borrowed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, GgufError> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic: [u8; 4] = c.array("magic")?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic(magic));
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version));
        }
        // Smallest possible tensor entry: 8-byte name length, n_dims, one dim, type, offset.
        let n_tensors = c.count(8 + 4 + 8 + 4 + 8, "tensor count")?;
        // Smallest possible key/value: 8-byte key length, type, one byte.
        let n_kv = c.count(8 + 4 + 1, "metadata count")?;

        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let code = c.u32("metadata value type")?;
            let value = c.value(&key, code, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(GgufError::DuplicateKey(key));
            }
        }

        let mut tensors = Vec::with_capacity(n_tensors);
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32("tensor dims")?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(GgufError::BadDims { name, dims: vec![] });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64("tensor dim")?);
            }
            let code = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            let total = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|_| d > 0));
            if total.is_none() {
                return Err(GgufError::BadDims { name, dims });
            }
            let ggml_type =
                GgmlType::from_code(code).ok_or_else(|| GgufError::UnsupportedType {
                    name: name.clone(),
                    code,
                })?;
            let block = ggml_type.block_elements() as u64;
            if dims[0] % block != 0 {
                return Err(GgufError::RowNotBlockAligned {
                    name,
                    row: dims[0],
                    block,
                });
            }
            if !names.insert(name.clone()) {
                return Err(GgufError::DuplicateTensor(name));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
            });
        }

        let alignment = match metadata.get("general.alignment") {
            Some(v) => v.as_u64().ok_or_else(|| GgufError::WrongType {
                key: "general.alignment".into(),
                expected: "unsigned integer",
            })?,
            None => DEFAULT_ALIGNMENT,
        };
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment(alignment));
        }
        let header_end = c.pos as u64;
        let data_start = header_end.div_ceil(alignment) * alignment;
        let data = usize::try_from(data_start)
            .ok()
            .and_then(|s| bytes.get(s..))
            .unwrap_or(&[]);

        let file = GgufFile {
            version,
            metadata,
            tensors,
            data,
        };
        for t in &file.tensors {
            file.check_bounds(t, alignment)?;
        }
        Ok(file)
    }

    fn byte_len(t: &TensorInfo) -> Option<u64> {
        let blocks = t.n_elements() / t.ggml_type.block_elements() as u64;
        blocks.checked_mul(t.ggml_type.block_bytes() as u64)
    }

    fn check_bounds(&self, t: &TensorInfo, alignment: u64) -> Result<(), GgufError> {
        let len = self.data.len() as u64;
        let end = Self::byte_len(t).and_then(|n| t.offset.checked_add(n));
        match end {
            Some(end) if end <= len && t.offset % alignment == 0 => Ok(()),
            _ => Err(GgufError::TensorOutOfBounds {
                name: t.name.clone(),
                start: t.offset,
                end: end.unwrap_or(u64::MAX),
                len,
            }),
        }
    }

    /// The directory entry of tensor `name`.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| GgufError::MissingTensor(name.to_owned()))
    }

    /// The raw (possibly quantised) bytes of tensor `name`.
    pub fn tensor_bytes(&self, name: &str) -> Result<(&TensorInfo, &'a [u8]), GgufError> {
        let t = self.tensor_info(name)?;
        // Bounds were checked in `parse`; the conversions cannot fail for a parsed file.
        let start = t.offset as usize;
        let end = start + Self::byte_len(t).unwrap_or(0) as usize;
        Ok((t, &self.data[start..end]))
    }

    /// Tensor `name` dequantised to f32, in GGML element order, with its row-major shape.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let (t, raw) = self.tensor_bytes(name)?;
        let values = quant::dequantize(t.ggml_type, raw);
        Ok((t.shape_row_major(), values))
    }

    /// Metadata value `key`.
    pub fn get(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.metadata
            .get(key)
            .ok_or_else(|| GgufError::MissingKey(key.to_owned()))
    }

    /// Metadata value `key` as an unsigned integer.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.get(key)?.as_u64().ok_or_else(|| GgufError::WrongType {
            key: key.to_owned(),
            expected: "unsigned integer",
        })
    }

    /// Metadata value `key` as a float.
    pub fn get_f64(&self, key: &str) -> Result<f64, GgufError> {
        self.get(key)?.as_f64().ok_or_else(|| GgufError::WrongType {
            key: key.to_owned(),
            expected: "float",
        })
    }

    /// Metadata value `key` as a string.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.get(key)?.as_str().ok_or_else(|| GgufError::WrongType {
            key: key.to_owned(),
            expected: "string",
        })
    }

    /// Metadata value `key` as an array.
    pub fn get_array(&self, key: &str) -> Result<&[MetaValue], GgufError> {
        self.get(key)?
            .as_array()
            .ok_or_else(|| GgufError::WrongType {
                key: key.to_owned(),
                expected: "array",
            })
    }
}
