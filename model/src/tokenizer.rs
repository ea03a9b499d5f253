//! Byte-level BPE tokenizer built from a GGUF vocabulary and merge list (`tokenizer.ggml.model =
//! gpt2`), with llama.cpp's `smollm` pre-tokeniser: every digit is its own piece, then the GPT-2
//! split pattern. Control tokens (`<|im_start|>` …) are matched verbatim in the text, as llama.cpp
//! does with `parse_special`.

use std::collections::HashMap;

use fancy_regex::Regex;

use super::gguf::{GgufError, GgufFile};

/// llama.cpp's GPT-2 split pattern (`LLAMA_VOCAB_PRE_TYPE_SMOLLM` applies it after splitting
/// digits).
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Pre-tokeniser names (GGUF `tokenizer.ggml.pre`) that use exactly the split above.
const SUPPORTED_PRE: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
    "gpt-2",
    "gpt2",
];
/// GGUF token type of control tokens.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// GGUF token type of user-defined tokens (also matched verbatim).
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// A token id.
pub type TokenId = u32;

/// Why a tokenizer could not be built or could not encode/decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A GGUF metadata problem.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// `tokenizer.ggml.model` is not a byte-level BPE.
    #[error("unsupported tokenizer model {0:?} (expected \"gpt2\")")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokeniser we do not implement.
    #[error("unsupported pre-tokeniser {0:?}")]
    UnsupportedPre(String),
    /// A vocabulary or merge entry is malformed.
    #[error("malformed tokenizer entry {index} in {what}: {detail}")]
    Malformed {
        /// Which list.
        what: &'static str,
        /// Index in that list.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// The vocabulary has none of the 256 byte symbols: not a byte-level vocabulary.
    #[error("the vocabulary has no byte-level symbols")]
    NoByteTokens,
    /// A token id outside the vocabulary.
    #[error("token id {id} outside vocabulary of {size}")]
    UnknownId {
        /// The id.
        id: TokenId,
        /// Vocabulary size.
        size: usize,
    },
    /// The split pattern failed at run time (backtracking limit).
    #[error("pre-tokeniser failed: {0}")]
    Split(String),
}

/// GPT-2's reversible map from bytes to printable characters.
fn bytes_to_unicode() -> [char; 256] {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map[b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    map
}

/// A byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    /// Token text as stored in GGUF (byte-level encoded for normal tokens).
    tokens: Vec<String>,
    /// Decoded bytes of each token.
    token_bytes: Vec<Vec<u8>>,
    /// Token of each byte symbol; `None` where the vocabulary lacks it (such bytes are dropped,
    /// as Hugging Face's BPE does without an unknown token).
    byte_token: [Option<TokenId>; 256],
    /// (left, right) → (rank, merged).
    merges: HashMap<(TokenId, TokenId), (u32, TokenId)>,
    /// Control and user-defined tokens, longest first, matched verbatim.
    specials: Vec<(String, TokenId)>,
    split: Regex,
    /// `smollm`: every numeric character is a piece of its own before the GPT-2 split.
    split_digits: bool,
    bos: Option<TokenId>,
    eos: Option<TokenId>,
}

impl Tokenizer {
    /// Builds the tokenizer from GGUF metadata.
    pub fn from_gguf(file: &GgufFile<'_>) -> Result<Self, TokenizerError> {
        let model = file.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model.to_owned()));
        }
        let pre = file.get_str("tokenizer.ggml.pre").unwrap_or("gpt2");
        if !SUPPORTED_PRE.contains(&pre) {
            return Err(TokenizerError::UnsupportedPre(pre.to_owned()));
        }
        let split_digits = pre != "gpt2" && pre != "gpt-2";
        let tokens = strings(file.get_array("tokenizer.ggml.tokens")?, "tokens")?;
        let types: Vec<i64> = match file.get_array("tokenizer.ggml.token_type") {
            Ok(a) => a
                .iter()
                .enumerate()
                .map(|(index, v)| {
                    v.as_i64().ok_or_else(|| TokenizerError::Malformed {
                        what: "token types",
                        index,
                        detail: "not an integer".into(),
                    })
                })
                .collect::<Result<_, _>>()?,
            Err(GgufError::MissingKey(_)) => vec![1; tokens.len()],
            Err(e) => return Err(e.into()),
        };
        let merges = strings(file.get_array("tokenizer.ggml.merges")?, "merges")?;
        let id = |k: &str| -> Option<TokenId> {
            file.get_u64(k)
                .ok()
                .and_then(|v| TokenId::try_from(v).ok())
                .filter(|&v| (v as usize) < tokens.len())
        };
        let (bos, eos) = (
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        );
        Self::new(tokens, &types, &merges, split_digits, bos, eos)
    }

    /// Builds a tokenizer from its parts: token texts (byte-level encoded), GGUF token types,
    /// merges (`"left right"`, highest priority first).
    pub fn new(
        tokens: Vec<String>,
        types: &[i64],
        merges: &[String],
        split_digits: bool,
        bos: Option<TokenId>,
        eos: Option<TokenId>,
    ) -> Result<Self, TokenizerError> {
        let b2u = bytes_to_unicode();
        let mut u2b = HashMap::new();
        for (b, &c) in b2u.iter().enumerate() {
            u2b.insert(c, b as u8);
        }
        let mut ids = HashMap::with_capacity(tokens.len());
        let mut specials = Vec::new();
        let mut token_bytes = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            let id = TokenId::try_from(i).map_err(|_| TokenizerError::Malformed {
                what: "tokens",
                index: i,
                detail: "too many tokens".into(),
            })?;
            let ty = types.get(i).copied().unwrap_or(1);
            if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
                specials.push((t.clone(), id));
                token_bytes.push(t.as_bytes().to_vec());
            } else {
                // Characters outside the byte map (never in a well-formed vocabulary) are kept as
                // their UTF-8, which is what llama.cpp falls back to.
                let mut bytes = Vec::with_capacity(t.len());
                for ch in t.chars() {
                    match u2b.get(&ch) {
                        Some(&b) => bytes.push(b),
                        None => bytes.extend_from_slice(ch.encode_utf8(&mut [0u8; 4]).as_bytes()),
                    }
                }
                token_bytes.push(bytes);
            }
            ids.entry(t.clone()).or_insert(id);
        }
        specials.retain(|(s, _)| !s.is_empty());
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));

        let mut byte_token = [None; 256];
        for (b, c) in b2u.iter().enumerate() {
            byte_token[b] = ids.get(&c.to_string()).copied();
        }
        if byte_token.iter().all(Option::is_none) {
            return Err(TokenizerError::NoByteTokens);
        }

        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            let bad = |detail: &str| TokenizerError::Malformed {
                what: "merges",
                index: rank,
                detail: detail.to_owned(),
            };
            let (l, r) = m.split_once(' ').ok_or_else(|| bad("no space"))?;
            let lid = *ids
                .get(l)
                .ok_or_else(|| bad("left part not in vocabulary"))?;
            let rid = *ids
                .get(r)
                .ok_or_else(|| bad("right part not in vocabulary"))?;
            let merged = format!("{l}{r}");
            let mid = *ids
                .get(&merged)
                .ok_or_else(|| bad("merged token not in vocabulary"))?;
            let rank = u32::try_from(rank).map_err(|_| bad("too many merges"))?;
            merge_map.entry((lid, rid)).or_insert((rank, mid));
        }

        let split = Regex::new(GPT2_PATTERN).map_err(|e| TokenizerError::Split(e.to_string()))?;
        Ok(Tokenizer {
            tokens,
            token_bytes,
            byte_token,
            merges: merge_map,
            specials,
            split,
            split_digits,
            bos,
            eos,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Beginning-of-sequence token, if the vocabulary names one.
    pub fn bos(&self) -> Option<TokenId> {
        self.bos
    }

    /// End-of-sequence token, if the vocabulary names one.
    pub fn eos(&self) -> Option<TokenId> {
        self.eos
    }

    /// The id of a control or user-defined token by its exact text.
    pub fn special_id(&self, text: &str) -> Option<TokenId> {
        self.specials
            .iter()
            .find(|(s, _)| s == text)
            .map(|&(_, id)| id)
    }

    /// Encodes `text`; control tokens written in the text become their ids (for trusted
    /// templates only; see [`encode_ordinary`](Self::encode_ordinary)).
    pub fn encode(&self, text: &str) -> Result<Vec<TokenId>, TokenizerError> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // Earliest special token; on ties the longest (specials are sorted longest first).
            let mut hit: Option<(usize, &str, TokenId)> = None;
            for (s, id) in &self.specials {
                if let Some(pos) = rest.find(s.as_str()) {
                    if hit.is_none_or(|(p, _, _)| pos < p) {
                        hit = Some((pos, s, *id));
                    }
                }
            }
            match hit {
                Some((pos, s, id)) => {
                    self.encode_plain(&rest[..pos], &mut out)?;
                    out.push(id);
                    rest = &rest[pos + s.len()..];
                }
                None => {
                    self.encode_plain(rest, &mut out)?;
                    rest = "";
                }
            }
        }
        Ok(out)
    }

    /// Encodes `text` as plain text: control-token spellings in it are ordinary characters.
    /// Use this for anything a user wrote.
    pub fn encode_ordinary(&self, text: &str) -> Result<Vec<TokenId>, TokenizerError> {
        let mut out = Vec::new();
        self.encode_plain(text, &mut out)?;
        Ok(out)
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<TokenId>) -> Result<(), TokenizerError> {
        if !self.split_digits {
            return self.encode_split(text, out);
        }
        // First stage (`\p{N}`): each numeric character alone; the text between goes on to the
        // GPT-2 pattern. Two stages, not one alternation: " 42" must not stay one piece.
        let mut start = 0;
        for (i, ch) in text.char_indices() {
            if ch.is_numeric() {
                self.encode_split(&text[start..i], out)?;
                let end = i + ch.len_utf8();
                self.bpe(&text.as_bytes()[i..end], out);
                start = end;
            }
        }
        self.encode_split(&text[start..], out)
    }

    fn encode_split(&self, text: &str, out: &mut Vec<TokenId>) -> Result<(), TokenizerError> {
        for piece in self.split.find_iter(text) {
            let piece = piece.map_err(|e| TokenizerError::Split(e.to_string()))?;
            self.bpe(piece.as_str().as_bytes(), out);
        }
        Ok(())
    }

    fn bpe(&self, bytes: &[u8], out: &mut Vec<TokenId>) {
        let mut syms: Vec<TokenId> = bytes
            .iter()
            .filter_map(|&b| self.byte_token[b as usize])
            .collect();
        while syms.len() > 1 {
            // The lowest-rank pair; the leftmost on ties.
            let mut best: Option<(u32, usize, TokenId)> = None;
            for i in 0..syms.len() - 1 {
                if let Some(&(rank, merged)) = self.merges.get(&(syms[i], syms[i + 1])) {
                    if best.is_none_or(|(r, _, _)| rank < r) {
                        best = Some((rank, i, merged));
                    }
                }
            }
            let Some((_, first, merged)) = best else {
                break;
            };
            // Merge every non-overlapping occurrence of that pair, left to right.
            let (l, r) = (syms[first], syms[first + 1]);
            let mut next = Vec::with_capacity(syms.len());
            let mut i = 0;
            while i < syms.len() {
                if i + 1 < syms.len() && syms[i] == l && syms[i + 1] == r && i >= first {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(syms[i]);
                    i += 1;
                }
            }
            syms = next;
        }
        out.extend(syms);
    }

    /// The bytes a token stands for (control tokens: their text).
    pub fn token_bytes(&self, id: TokenId) -> Result<&[u8], TokenizerError> {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .ok_or(TokenizerError::UnknownId {
                id,
                size: self.tokens.len(),
            })
    }

    /// Decodes ids to text; invalid UTF-8 (a sequence cut inside a character) becomes U+FFFD.
    pub fn decode(&self, ids: &[TokenId]) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id)?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn strings(
    values: &[super::gguf::MetaValue],
    what: &'static str,
) -> Result<Vec<String>, TokenizerError> {
    values
        .iter()
        .enumerate()
        .map(|(index, v)| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| TokenizerError::Malformed {
                    what,
                    index,
                    detail: "not a string".into(),
                })
        })
        .collect()
}

#[cfg(test)]
#[cfg_attr(test, allow(clippy::unwrap_used))]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let b2u = bytes_to_unicode();
        let mut tokens: Vec<String> = vec!["<|im_start|>".into(), "<|im_end|>".into()];
        tokens.extend(b2u.iter().map(|c| c.to_string()));
        for t in ["Ġt", "he", "Ġthe", "ll", "lo", "Ġ1"] {
            tokens.push(t.into());
        }
        let mut types = vec![3, 3];
        types.resize(tokens.len(), 1);
        let merges: Vec<String> = ["Ġ t", "h e", "Ġt he", "l l", "l o", "Ġ 1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Tokenizer::new(tokens, &types, &merges, true, None, Some(1)).unwrap()
    }

    #[test]
    fn byte_map_is_a_bijection() {
        let m = bytes_to_unicode();
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        assert_eq!(m[b'A' as usize], 'A');
    }

    #[test]
    fn merges_follow_rank_and_round_trip() {
        let t = tiny();
        let ids = t.encode("the hello the").unwrap();
        let texts: Vec<&[u8]> = ids.iter().map(|&i| t.token_bytes(i).unwrap()).collect();
        // "h e" (rank 1) before "l l" (rank 3); " the" merges fully via "Ġ t" then "Ġt he".
        let expected: Vec<&[u8]> = vec![b"t", b"he", b" ", b"he", b"ll", b"o", b" the"];
        assert_eq!(texts, expected);
        assert_eq!(t.decode(&ids).unwrap(), "the hello the");
    }

    #[test]
    fn specials_are_matched_and_digits_split() {
        let t = tiny();
        let ids = t.encode("<|im_start|>12<|im_end|>").unwrap();
        assert_eq!(ids[0], 0);
        assert_eq!(*ids.last().unwrap(), 1);
        assert_eq!(ids.len(), 4, "each digit is its own piece: {ids:?}");
        assert_eq!(t.decode(&ids).unwrap(), "<|im_start|>12<|im_end|>");
        // Digits are split off before the GPT-2 pattern runs, so " 1" never becomes one piece
        // even though the vocabulary has a merge for it; other numerals (½) count as digits.
        let ids = t.encode("a 1½").unwrap();
        let texts: Vec<&[u8]> = ids.iter().map(|&i| t.token_bytes(i).unwrap()).collect();
        let half = "½".as_bytes();
        let expected: Vec<&[u8]> = vec![b"a", b" ", b"1", &half[..1], &half[1..]];
        assert_eq!(texts, expected);
    }
}
