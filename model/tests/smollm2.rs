//! SmolLM2-135M-Instruct with its real weights, against the independent Python reference
//! (model/reference, outputs in tests/data). Needs the weights: run
//! `scripts/fetch-model.sh`; without them each test prints SKIPPED and returns.
#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;
use std::sync::OnceLock;

use lucent_model::sampling::argmax;
use lucent_model::{chat, default_model_path, ChatMessage, LanguageModel, ModelLimits, Role, Task};

/// A token callback that never stops the run.
fn go_on(_: u32) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn model() -> Option<&'static LanguageModel> {
    static MODEL: OnceLock<Option<LanguageModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = default_model_path()?;
            if !path.exists() {
                return None;
            }
            let limits = ModelLimits {
                max_input_tokens: 1024,
                max_output_tokens: 128,
            };
            Some(LanguageModel::from_path(&path, limits).expect("the model file loads"))
        })
        .as_ref()
        .or_else(|| {
            let path = default_model_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "$LUCENT_MODEL_DIR (HOME unset)".into());
            println!("SKIPPED: model weights not found at {path}; run scripts/fetch-model.sh");
            None
        })
}

fn data(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn weights_file_has_the_published_digest() {
    use sha2::{Digest, Sha256};
    if model().is_none() {
        return;
    }
    let path = default_model_path().unwrap();
    let digest = Sha256::digest(std::fs::read(&path).unwrap());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, lucent_model::SMOLLM2_SHA256, "{}", path.display());
}

#[test]
fn tokenizer_matches_reference_ids_and_round_trips() {
    let Some(lm) = model() else { return };
    let reference = data("model_tokenizer_reference.json");
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let got = lm.tokenizer().encode(text).unwrap();
        assert_eq!(got, want, "token ids for {text:?}");
        assert_eq!(lm.tokenizer().decode(&got).unwrap(), text, "round trip");
    }
}

#[test]
fn greedy_decoding_matches_reference_token_for_token() {
    let Some(lm) = model() else { return };
    let reference = data("model_greedy_reference.json");
    let messages: Vec<ChatMessage> = reference["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap() {
                "system" => Role::System,
                "user" => Role::User,
                _ => Role::Assistant,
            };
            ChatMessage::new(role, m["content"].as_str().unwrap())
        })
        .collect();
    let prompt = chat::render_chatml(&messages, true);
    assert_eq!(prompt, reference["prompt"].as_str().unwrap());
    let prompt_ids = lm.tokenizer().encode(&prompt).unwrap();
    assert_eq!(prompt_ids, ids(&reference["prompt_ids"]));
    assert_eq!(
        lm.encode_chat(&messages).unwrap(),
        prompt_ids,
        "segment-wise chat encoding equals encoding the rendered template"
    );

    let llama = lm.llama();
    let mut cache = llama.new_cache();
    let mut logits = llama.forward(&prompt_ids, &mut cache).unwrap();
    // First-step logits agree with the reference's top 10 (float32 on both sides).
    for top in reference["first_step_top10"].as_array().unwrap() {
        let id = top["id"].as_u64().unwrap() as usize;
        let want = top["logit"].as_f64().unwrap();
        let got = f64::from(logits[id]);
        assert!((got - want).abs() < 1e-2, "logit of {id}: {got} vs {want}");
    }
    // The reference does not stop at <|im_end|>; neither do we here.
    let want = ids(&reference["generated_ids"]);
    let mut got = Vec::new();
    for _ in 0..want.len() {
        let next = argmax(&logits).unwrap() as u32;
        got.push(next);
        logits = llama.forward(&[next], &mut cache).unwrap();
    }
    assert_eq!(got, want, "greedy continuation");
    println!("greedy: {:?}", lm.tokenizer().decode(&got).unwrap());
}

#[test]
fn summary_of_a_sample_conversation_end_to_end() {
    let Some(lm) = model() else { return };
    let conversation = "Alice: Are we still on for the design review tomorrow at ten?\n\
        Bob: Yes, but Carol can't make it, so we'll move the budget part to Friday.\n\
        Alice: Fine. I'll send the slides tonight and book the small room.";
    let summary = lm
        .answer(Task::Summarize, conversation, 128, &mut go_on)
        .unwrap()
        .text;
    println!("summary: {summary}");
    assert!(!summary.trim().is_empty());
    assert!(
        !summary.contains("<|im_"),
        "control tokens leak: {summary:?}"
    );
    let lower = summary.to_lowercase();
    assert!(
        ["review", "friday", "slides", "budget", "meeting"]
            .iter()
            .any(|w| lower.contains(w)),
        "summary mentions nothing from the conversation: {summary:?}"
    );
    let suggestion = lm
        .answer(
            Task::Suggest,
            "hey can u send me the report asap",
            128,
            &mut go_on,
        )
        .unwrap()
        .text;
    println!("suggestion: {suggestion}");
    assert!(!suggestion.trim().is_empty());
}
