//! The language model behind Lucent's AI features: conversation summaries and writing
//! suggestions, run inside the confidential VM.
//!
//! What it does: SmolLM2-135M-Instruct (Apache-2.0, Llama architecture) runs in [burn] on its
//! pure-Rust CPU backend (`flex`), float32 arithmetic throughout. The weights arrive as a GGUF
//! file (Q4_1 with a Q8_0 embedding), which [`gguf`] parses from bytes in memory and [`quant`]
//! dequantises exactly as ggml does; they never have to touch the disk. [`tokenizer`] is the
//! byte-level BPE from the GGUF vocabulary, [`chat`] the ChatML template, [`llama`] the decoder
//! with its key/value cache and [`sampling`] greedy or seeded temperature/top-p decoding.
//!
//! A request is a [`Task`] and the user's text. [`task::messages`] is the one place they become
//! a prompt (the task's instructions as the system turn, the text as the user's), and
//! [`LanguageModel::answer`] runs it: template, tokenizer, prefill, generation, decoding, under
//! the [`ModelLimits`] the model was loaded with. Oversized input is refused with
//! [`ModelError::InputTooLong`] (or [`ModelError::InputTooLarge`], before tokenizing) before
//! any work is done; a callback sees every generated token and may stop the run (a deadline).
//!
//! Two steps run outside burn's operators, because burn's CPU backend does them one element or
//! one thread at a time: [`packed`] multiplies a generated token by the weights straight from
//! their quantised blocks (the same f32 weights, a fifth of the bytes to read), and [`vector`]
//! evaluates the attention softmax and SwiGLU with a vectorised `exp`. Everything else (the
//! prompt's matrix products, attention, norms, RoPE) is burn.
//!
//! What it does not do: fetch, decrypt or check the weights (the runtime's key release does,
//! against the release's model digest), HTTP or encryption, batching several requests, GPU
//! backends, quantised kernels for the prompt (it is multiplied by the dequantised f32
//! weights). Formats: GGUF v3 (llama.cpp's `gguf.md`), ggml's Q4_1 and Q8_0 blocks, ChatML.
//!
//! With the feature `test-support`, `tiny_model` writes a tiny random-weight model of the
//! same architecture as a GGUF file, for tests, benchmarks and devnets; the measured runtime
//! does not turn it on.
//!
//! ```
//! use std::ops::ControlFlow;
//! use lucent_model::{LanguageModel, ModelLimits, StopReason, Task};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The real model: `std::fs::read(lucent_model::default_model_path().unwrap())?`, or the
//! // weights just decrypted in memory. Here the tiny random model (feature `test-support`).
//! let bytes: Vec<u8> = lucent_model::tiny_model::tiny_gguf(7);
//! let model = LanguageModel::from_gguf_bytes(&bytes, ModelLimits::default())?;
//! drop(bytes); // the model holds its own copy
//!
//! let answer = model.answer(
//!     Task::Summarize,
//!     "Alice: lunch at noon?\nBob: yes, the usual place.",
//!     8,
//!     &mut |_token| ControlFlow::Continue(()), // or Break when a deadline has passed
//! )?;
//! assert!(answer.tokens <= 8);
//! assert_ne!(answer.stop, StopReason::Callback);
//! println!("{}", answer.text); // the tiny model's answers are noise
//! # Ok(()) }
//! ```

pub mod chat;
#[cfg(feature = "eval")]
pub mod eval;
pub mod gguf;
pub mod llama;
pub mod packed;
pub mod quant;
pub mod sampling;
pub mod task;
#[cfg(feature = "test-support")]
pub mod tiny_model;
pub mod tokenizer;
pub mod vector;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

pub use chat::{ChatMessage, Role};
use gguf::{GgufError, GgufFile};
use llama::{Llama, LlamaConfig, LlamaError, LlamaWeights};
use sampling::{Sampler, SamplingParams};
pub use task::Task;
use tokenizer::{TokenId, Tokenizer, TokenizerError};

/// File name of the model the release ships.
pub const SMOLLM2_FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of that file (as published with a release's model-weights digest).
pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Environment variable naming the folder that holds the model file.
pub const MODEL_DIR_ENV: &str = "LUCENT_MODEL_DIR";

/// Where the model file is expected: `$LUCENT_MODEL_DIR` or `$HOME/.cache/lucent/models`.
pub fn default_model_path() -> Option<PathBuf> {
    let dir = match std::env::var_os(MODEL_DIR_ENV) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/lucent/models"),
    };
    Some(dir.join(SMOLLM2_FILE_NAME))
}

/// Why the model could not load or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The weights file is malformed.
    #[error("model file: {0}")]
    Gguf(#[from] GgufError),
    /// The tokenizer could not be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// The network could not be built or run.
    #[error("model: {0}")]
    Llama(#[from] LlamaError),
    /// The model file could not be read.
    #[error("reading model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The input is longer than [`ModelLimits::max_input_tokens`].
    #[error("input is {tokens} tokens, over the limit of {limit}")]
    InputTooLong {
        /// Tokens in the rendered prompt.
        tokens: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is so large it was refused before tokenizing (no token is shorter than a
    /// byte, but none is longer than the vocabulary's longest, so a bound on bytes suffices).
    #[error(
        "input is {bytes} bytes, over the {limit} bytes any {limit_tokens}-token input can span"
    )]
    InputTooLarge {
        /// Bytes of input.
        bytes: usize,
        /// Byte bound implied by the token limit.
        limit: usize,
        /// The token limit.
        limit_tokens: usize,
    },
    /// The vocabulary lacks a control token the chat template needs.
    #[error("the vocabulary has no {0} token")]
    MissingControlToken(&'static str),
    /// Nothing to work on.
    #[error("empty input: {0}")]
    EmptyInput(&'static str),
    /// The limits do not fit the model's context.
    #[error(
        "limits of {input} input + {output} output tokens exceed the model context of {context}"
    )]
    BadLimits {
        /// Input limit.
        input: usize,
        /// Output limit.
        output: usize,
        /// Model context.
        context: usize,
    },
}

/// Limits on what one request may ask of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    /// Most tokens in the rendered prompt (template, instructions and user text).
    pub max_input_tokens: usize,
    /// Most tokens generated for one answer.
    pub max_output_tokens: usize,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits {
            max_input_tokens: 2048,
            max_output_tokens: 256,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// A stop token was produced (it is not part of the output).
    StopToken(TokenId),
    /// The output limit was reached.
    MaxTokens,
    /// The token callback asked to stop.
    Callback,
    /// The answer was complete by its task's rule (its sentence limit reached, or a sentence
    /// repeated): see [`task::answer_is_complete`].
    Complete,
}

/// The result of [`LanguageModel::generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Tokens generated, stop token excluded.
    pub tokens: Vec<TokenId>,
    /// Why it ended.
    pub stop: StopReason,
}

/// The result of [`LanguageModel::answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The generated tokens decoded (bytes that are not UTF-8 replaced), stop token excluded.
    pub text: String,
    /// How many tokens were generated.
    pub tokens: usize,
    /// Why generation ended; [`StopReason::Callback`] when the caller stopped it.
    pub stop: StopReason,
}

/// Turns a stream of token bytes into whole UTF-8 text pieces.
#[derive(Debug, Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // A sequence cut at the end may still be completed; invalid bytes inside are not.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let out: Vec<u8> = self.pending.drain(..valid).collect();
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// SmolLM2 (or any `llama` GGUF with a byte-level BPE vocabulary), loaded and ready to answer.
#[derive(Debug)]
pub struct LanguageModel {
    llama: Llama,
    tokenizer: Tokenizer,
    limits: ModelLimits,
    sampling: SamplingParams,
    stop_tokens: Vec<TokenId>,
    max_token_bytes: usize,
    /// Tokens that begin with a colon (after spaces): refused right after a speaker's name
    /// at the start of a one-paragraph answer ([`task::opens_a_transcript_line`]).
    colon_tokens: Vec<TokenId>,
}

impl LanguageModel {
    /// Loads a GGUF model held in memory (for example just decrypted). The bytes may be dropped
    /// afterwards. Decoding is greedy until [`with_sampling`](Self::with_sampling) says otherwise.
    pub fn from_gguf_bytes(bytes: &[u8], limits: ModelLimits) -> Result<Self, ModelError> {
        Self::from_gguf_bytes_on(bytes, limits, &Device::flex())
    }

    /// As [`from_gguf_bytes`](Self::from_gguf_bytes), on a burn device of the caller's choice
    /// (only `flex`, the pure-Rust CPU backend, is compiled in and tested today).
    pub fn from_gguf_bytes_on(
        bytes: &[u8],
        limits: ModelLimits,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let file = GgufFile::parse(bytes)?;
        let context = limits
            .max_input_tokens
            .saturating_add(limits.max_output_tokens);
        let config = LlamaConfig::from_gguf(&file, context)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let weights = LlamaWeights::from_gguf(&file, &config)?;
        let llama = Llama::new(config, weights, device)?;
        Self::from_parts(llama, tokenizer, limits)
    }

    /// Reads the GGUF file at `path` into memory and loads it.
    pub fn from_path(path: &Path, limits: ModelLimits) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_gguf_bytes(&bytes, limits)
    }

    /// Assembles a model from a network and a tokenizer (tests use a tiny random one).
    pub fn from_parts(
        llama: Llama,
        tokenizer: Tokenizer,
        limits: ModelLimits,
    ) -> Result<Self, ModelError> {
        let context = llama.config().max_seq_len;
        if limits
            .max_input_tokens
            .saturating_add(limits.max_output_tokens)
            > context
            || limits.max_input_tokens == 0
        {
            return Err(ModelError::BadLimits {
                input: limits.max_input_tokens,
                output: limits.max_output_tokens,
                context,
            });
        }
        let mut stop_tokens: Vec<TokenId> = [chat::IM_END, "<|endoftext|>"]
            .iter()
            .filter_map(|s| tokenizer.special_id(s))
            .collect();
        stop_tokens.extend(tokenizer.eos());
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        let max_token_bytes = (0..tokenizer.vocab_size() as TokenId)
            .filter_map(|id| tokenizer.token_bytes(id).ok().map(<[u8]>::len))
            .max()
            .unwrap_or(1)
            .max(1);
        let colon_tokens = (0..tokenizer.vocab_size() as TokenId)
            .filter(|&id| {
                tokenizer
                    .token_bytes(id)
                    .is_ok_and(|b| b.trim_ascii_start().starts_with(b":"))
            })
            .collect();
        Ok(LanguageModel {
            llama,
            tokenizer,
            limits,
            sampling: SamplingParams::GREEDY,
            stop_tokens,
            max_token_bytes,
            colon_tokens,
        })
    }

    /// Uses `sampling` for [`answer`](Self::answer) and [`chat`](Self::chat).
    pub fn with_sampling(mut self, sampling: SamplingParams) -> Self {
        self.sampling = sampling;
        self
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The network.
    pub fn llama(&self) -> &Llama {
        &self.llama
    }

    /// The limits.
    pub fn limits(&self) -> ModelLimits {
        self.limits
    }

    /// Tokens that end an answer (`<|im_end|>`, `<|endoftext|>`, the vocabulary's EOS).
    pub fn stop_tokens(&self) -> &[TokenId] {
        &self.stop_tokens
    }

    /// Generates up to `max_new_tokens` after `prompt`, calling `on_token` for each new token
    /// as it is produced. Stops at a stop token (not passed on), at the limit, or when
    /// `on_token` breaks.
    pub fn generate(
        &self,
        prompt: &[TokenId],
        max_new_tokens: usize,
        sampling: SamplingParams,
        on_token: &mut dyn FnMut(TokenId) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        self.generate_masked(prompt, max_new_tokens, sampling, &mut |_| {}, on_token)
    }

    /// [`generate`](Self::generate), with `mask` shaping each step's logits before the token is
    /// chosen (a token set to negative infinity is never chosen).
    fn generate_masked(
        &self,
        prompt: &[TokenId],
        max_new_tokens: usize,
        sampling: SamplingParams,
        mask: &mut dyn FnMut(&mut [f32]),
        on_token: &mut dyn FnMut(TokenId) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::EmptyInput("prompt"));
        }
        if prompt.len() > self.limits.max_input_tokens {
            return Err(ModelError::InputTooLong {
                tokens: prompt.len(),
                limit: self.limits.max_input_tokens,
            });
        }
        let max_new = max_new_tokens.min(self.limits.max_output_tokens);
        let mut sampler = Sampler::new(sampling);
        let mut cache = self.llama.new_cache();
        let mut logits = self.llama.forward(prompt, &mut cache)?;
        let mut tokens = Vec::new();
        loop {
            if tokens.len() >= max_new {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::MaxTokens,
                });
            }
            mask(&mut logits);
            let Some(next) = sampler.sample(&logits) else {
                return Err(ModelError::EmptyInput("logits"));
            };
            if self.stop_tokens.contains(&next) {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::StopToken(next),
                });
            }
            tokens.push(next);
            if on_token(next).is_break() {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::Callback,
                });
            }
            if tokens.len() < max_new {
                logits = self.llama.forward(&[next], &mut cache)?;
            }
        }
    }

    /// Tokenizes the ChatML prompt for `messages`, ending with an open assistant turn. Message
    /// text is tokenized as plain text, so it cannot forge control tokens. Input over
    /// [`ModelLimits::max_input_tokens`] is refused, very large input before tokenizing.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<TokenId>, ModelError> {
        let segments = chat::chatml_segments(messages, true);
        let bytes: usize = segments
            .iter()
            .map(|s| match s {
                chat::ChatSegment::Control(c) => c.len(),
                chat::ChatSegment::Text(t) => t.len(),
            })
            .sum();
        // Refuse huge inputs before spending time tokenizing them.
        let byte_limit = self
            .limits
            .max_input_tokens
            .saturating_mul(self.max_token_bytes);
        if bytes > byte_limit {
            return Err(ModelError::InputTooLarge {
                bytes,
                limit: byte_limit,
                limit_tokens: self.limits.max_input_tokens,
            });
        }
        let mut ids = Vec::new();
        for s in segments {
            match s {
                chat::ChatSegment::Control(c) => ids.push(
                    self.tokenizer
                        .special_id(c)
                        .ok_or(ModelError::MissingControlToken(c))?,
                ),
                chat::ChatSegment::Text(t) => ids.extend(self.tokenizer.encode_ordinary(&t)?),
            }
        }
        if ids.len() > self.limits.max_input_tokens {
            return Err(ModelError::InputTooLong {
                tokens: ids.len(),
                limit: self.limits.max_input_tokens,
            });
        }
        Ok(ids)
    }

    /// Does `task` on the user's `text`: the prompt from [`task::messages`], at most
    /// `max_new_tokens` generated (and never more than [`ModelLimits::max_output_tokens`]),
    /// ended and finished by the task's rules ([`task::answer_is_complete`],
    /// [`task::finish_answer`]), decoded. `on_token` sees each generated token as it is
    /// produced and may stop the run (the answer then says [`StopReason::Callback`]), for
    /// example at a deadline.
    ///
    /// Refused before any work: text that is empty or only whitespace
    /// ([`ModelError::EmptyInput`]) and a prompt over the input limit
    /// ([`ModelError::InputTooLong`], [`ModelError::InputTooLarge`]).
    pub fn answer(
        &self,
        task: Task,
        text: &str,
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(TokenId) -> ControlFlow<()>,
    ) -> Result<Answer, ModelError> {
        if text.trim().is_empty() {
            return Err(ModelError::EmptyInput("text"));
        }
        self.answer_messages(task, &task::messages(task, text), max_new_tokens, on_token)
    }

    /// [`answer`](Self::answer) for a prompt given as `messages` (the evaluation tries other
    /// prompts this way); the task decides when the answer is complete and how it is finished.
    pub fn answer_messages(
        &self,
        task: Task,
        messages: &[ChatMessage],
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(TokenId) -> ControlFlow<()>,
    ) -> Result<Answer, ModelError> {
        let ids = self.encode_chat(messages)?;
        let speakers = match messages.last() {
            Some(m) if m.role == Role::User => task::speakers(task, &m.content),
            _ => Vec::new(),
        };
        let bytes = std::cell::RefCell::new(Vec::new());
        let mut complete = false;
        let mut failed = None;
        let mut mask = |logits: &mut [f32]| {
            let so_far = String::from_utf8_lossy(&bytes.borrow()).into_owned();
            if task::opens_a_transcript_line(&so_far, &speakers) {
                for &id in &self.colon_tokens {
                    if let Some(l) = logits.get_mut(id as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
        };
        let generation =
            self.generate_masked(&ids, max_new_tokens, self.sampling, &mut mask, &mut |id| {
                if on_token(id).is_break() {
                    return ControlFlow::Break(());
                }
                match self.tokenizer.token_bytes(id) {
                    Ok(b) => bytes.borrow_mut().extend_from_slice(b),
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                if task::answer_is_complete(task, &String::from_utf8_lossy(&bytes.borrow())) {
                    complete = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let stop = match generation.stop {
            StopReason::Callback if complete => StopReason::Complete,
            other => other,
        };
        let cut = matches!(stop, StopReason::MaxTokens | StopReason::Complete);
        Ok(Answer {
            text: task::finish_answer(task, &self.tokenizer.decode(&generation.tokens)?, cut),
            tokens: generation.tokens.len(),
            stop,
        })
    }

    /// Answers a conversation (ChatML), streaming text pieces to `on_text`; returns the answer.
    pub fn chat(
        &self,
        messages: &[ChatMessage],
        on_text: &mut dyn FnMut(&str),
    ) -> Result<String, ModelError> {
        if messages.is_empty() {
            return Err(ModelError::EmptyInput("no messages"));
        }
        let ids = self.encode_chat(messages)?;
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        let mut failed = None;
        self.generate(
            &ids,
            self.limits.max_output_tokens,
            self.sampling,
            &mut |id| match self.tokenizer.token_bytes(id) {
                Ok(b) => {
                    let piece = stream.push(b);
                    if !piece.is_empty() {
                        on_text(&piece);
                        text.push_str(&piece);
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let rest = String::from_utf8_lossy(&stream.pending).into_owned();
        on_text(&rest);
        text.push_str(&rest);
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stream_holds_back_cut_characters() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(b"a"), "a");
        assert_eq!(s.push(&e[..1]), "");
        assert_eq!(s.push(&e[1..]), "é");
        assert_eq!(s.push(&[0xff, b'b']), "\u{fffd}b");
    }

    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<LanguageModel>();
    }
}
