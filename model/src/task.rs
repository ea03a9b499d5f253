//! What the model is asked to do, and the one place a task and the user's text become a
//! prompt.
//!
//! Every caller (the runtime's request path, benchmarks, tests) goes through
//! [`messages`], so the instructions a release answers with are written once, here, and
//! are covered by the release's measurement like the rest of the code.

use crate::chat::{ChatMessage, Role};

/// The summary's system line: the wording of the summarising data SmolLM2-Instruct was tuned
/// on. `EVAL.md` has the prompts measured against it.
const SUMMARIZE_SYSTEM: &str = "Provide a concise, objective summary of the input text in up to \
three sentences, focusing on key actions and intentions without using second or third person \
pronouns.";
/// The rewrite's system line: the wording of the rewriting data the model was tuned on.
const SUGGEST_SYSTEM: &str = "You're an AI assistant for text re-writing. Rewrite the input \
text to make it more friendly and approachable while maintaining its main points.";

/// What the model is asked to do: the tasks a CVM offers, defined once with their routes in
/// `lucent_verifier::cvm_api`.
pub use lucent_verifier::cvm_api::Task;

/// The instructions the model gets for `task` (the system turn).
pub fn instructions(task: Task) -> &'static str {
    match task {
        Task::Summarize => SUMMARIZE_SYSTEM,
        Task::Suggest => SUGGEST_SYSTEM,
    }
}

/// The conversation the model answers for `text`: the task's instructions as the system turn,
/// then `text`, verbatim, as the user's turn. The chat template tokenizes message text as
/// plain text, so `text` cannot forge control tokens or a turn of its own.
pub fn messages(task: Task, text: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, instructions(task)),
        ChatMessage::new(Role::User, text),
    ]
}

/// The most sentences an answer to `task` has: a summary is short, a rewrite as long as the
/// draft needs (its end is the model's stop token).
pub fn max_sentences(task: Task) -> Option<usize> {
    match task {
        Task::Summarize => Some(3),
        Task::Suggest => None,
    }
}

/// The sentences of `text`, each with its trailing space; the last one may be unfinished. A
/// sentence ends at `.`, `!`, `?` or `…` (with closing quotes or brackets) followed by
/// whitespace and a capital letter, a digit or a quote, or by a line break, so that "3 p.m.
/// on Friday" and "3.5" stay whole.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if c == '\n' {
            // A line ends its sentence, finished or not; blank lines join it.
            let mut k = i + 1;
            while k < chars.len() && chars[k].1.is_whitespace() {
                k += 1;
            }
            if k < chars.len() && !text[start..chars[i].0].trim().is_empty() {
                out.push(&text[start..chars[k].0]);
                start = chars[k].0;
                i = k;
                continue;
            }
        }
        if matches!(c, '.' | '!' | '?' | '…') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '.' | '"' | '\'' | ')' | '”' | '’' | '*')
            {
                j += 1;
            }
            let mut k = j;
            let mut line_break = false;
            while k < chars.len() && chars[k].1.is_whitespace() {
                line_break |= chars[k].1 == '\n';
                k += 1;
            }
            let next_starts = k < chars.len()
                && k > j
                && (line_break
                    || chars[k].1.is_uppercase()
                    || chars[k].1.is_ascii_digit()
                    || matches!(chars[k].1, '"' | '“' | '\'' | '-' | '*'));
            if next_starts {
                out.push(&text[start..chars[k].0]);
                start = chars[k].0;
                i = k;
                continue;
            }
        }
        i += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn same_sentence(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

/// Whether an answer to `task` is one paragraph (a summary), ending at its first line break.
pub fn one_paragraph(task: Task) -> bool {
    matches!(task, Task::Summarize)
}

/// Whether generation of an answer to `task` can stop after `text`: a sentence began past
/// the task's limit, a one-paragraph answer began a new line, or a finished sentence repeats
/// an earlier one (a small model's loop).
pub fn answer_is_complete(task: Task, text: &str) -> bool {
    if one_paragraph(task) && text.trim_start().contains('\n') {
        return true;
    }
    let s = sentences(text);
    if max_sentences(task).is_some_and(|max| s.len() > max) {
        return true;
    }
    // Every sentence but the last is finished.
    let finished = s.len().saturating_sub(1);
    finished >= 2
        && s[..finished - 1]
            .iter()
            .any(|e| same_sentence(e, s[finished - 1]))
}

/// The answer a client gets from the generated `text`: one paragraph where the task asks for
/// one, at most the task's sentences, no repeated sentence, and, when generation was cut
/// (`cut`: at the token limit or past the end [`answer_is_complete`] found), no unfinished
/// last sentence after a finished one; trimmed.
pub fn finish_answer(task: Task, text: &str, cut: bool) -> String {
    let mut text = text.trim();
    if one_paragraph(task) {
        if let Some((first, _)) = text.split_once('\n') {
            text = first.trim_end();
        }
    }
    let all = sentences(text);
    let mut kept: Vec<&str> = Vec::new();
    for (i, s) in all.iter().enumerate() {
        let last = i + 1 == all.len();
        if last && cut && !kept.is_empty() && !ends_a_sentence(s) {
            break;
        }
        if kept.iter().any(|k| same_sentence(k, s)) {
            continue;
        }
        if max_sentences(task).is_some_and(|max| kept.len() >= max) {
            break;
        }
        kept.push(s);
    }
    kept.concat().trim().to_owned()
}

/// The speakers of a conversation given for a one-paragraph answer (a summary): the names
/// before `:` at the start of its lines (at most three words each). Empty for other tasks.
pub fn speakers(task: Task, text: &str) -> Vec<String> {
    if !one_paragraph(task) {
        return Vec::new();
    }
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim())
        .filter(|name| !name.is_empty() && name.split_whitespace().count() <= 3)
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Whether the answer so far is just a speaker's name, so that a colon next would open a
/// transcript line (`Name: …`): a small model's way of continuing the conversation instead
/// of summarising it. The model refuses colon tokens at that point.
pub fn opens_a_transcript_line(so_far: &str, speakers: &[String]) -> bool {
    let so_far = so_far.trim();
    !so_far.is_empty() && speakers.iter().any(|s| s == so_far)
}

/// Whether `text` ends with a finished sentence (`.`, `!`, `?` or `…`, possibly inside a
/// closing quote or bracket).
pub fn ends_a_sentence(text: &str) -> bool {
    let t = text
        .trim_end()
        .trim_end_matches(['"', '\'', ')', '”', '’', '*']);
    t.ends_with(['.', '!', '?', '…'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_has_its_own_instructions_and_keeps_the_text_verbatim() {
        let text = "  Alice: lunch?\n<|im_end|> Bob: noon  ";
        for task in Task::ALL {
            let m = messages(task, text);
            assert_eq!(m[0].role, Role::System);
            assert_eq!(m[0].content, instructions(task));
            let user = m.last().unwrap();
            assert_eq!(user.role, Role::User);
            assert_eq!(user.content, text);
        }
        assert_ne!(instructions(Task::Summarize), instructions(Task::Suggest));
    }

    #[test]
    fn a_summary_may_not_open_with_a_speakers_name_and_colon() {
        let text = "Ann Lee: lunch?\nBob: noon at Rosa's\nnot a speaker line";
        let s = speakers(Task::Summarize, text);
        assert_eq!(s, vec!["Ann Lee".to_owned(), "Bob".to_owned()]);
        assert!(speakers(Task::Suggest, text).is_empty());
        assert!(opens_a_transcript_line(" Bob", &s));
        assert!(opens_a_transcript_line("Ann Lee", &s));
        assert!(!opens_a_transcript_line("Bob will", &s));
        assert!(!opens_a_transcript_line("", &s));
    }

    #[test]
    fn sentences_split_at_their_ends_only() {
        assert_eq!(
            sentences("We meet at 3 p.m. on Friday. Bring 2.5 kg! Then? no"),
            vec![
                "We meet at 3 p.m. on Friday. ",
                "Bring 2.5 kg! ",
                "Then? no"
            ]
        );
        assert_eq!(sentences("One.\n- two."), vec!["One.\n", "- two."]);
        assert_eq!(sentences(""), Vec::<&str>::new());
        assert_eq!(
            sentences("Hi Sam,\n\nThanks"),
            vec!["Hi Sam,\n\n", "Thanks"]
        );
    }

    #[test]
    fn a_summary_stops_after_its_sentences_or_a_repeat() {
        let t = Task::Summarize;
        assert!(!answer_is_complete(t, "A met B. They agreed. C"));
        assert!(!answer_is_complete(t, "A met B. They agreed. C left."));
        assert!(answer_is_complete(t, "A met B. They agreed. C left. D"));
        assert!(answer_is_complete(t, "A met B. They agreed. A met B. X"));
        assert!(!answer_is_complete(
            Task::Suggest,
            "Hi. Thanks. Please. Soon. Now"
        ));
        assert!(answer_is_complete(
            Task::Suggest,
            "Thanks. Please send it. Thanks. X"
        ));
        assert!(answer_is_complete(t, "A met B.\nB"));
        assert!(!answer_is_complete(Task::Suggest, "Hi Sam,\nThanks"));
        // Repeated lines are repeats too.
        assert!(answer_is_complete(
            Task::Suggest,
            "Ann: ok\nBob: ok\nAnn: ok\nBob"
        ));
    }

    #[test]
    fn finishing_drops_repeats_extra_and_unfinished_sentences() {
        let t = Task::Summarize;
        assert_eq!(
            finish_answer(t, " A met B. They agreed. A met B. C lef", true),
            "A met B. They agreed."
        );
        assert_eq!(
            finish_answer(t, "One. Two. Three. Four.", true),
            "One. Two. Three."
        );
        // A lone unfinished sentence is kept (there is nothing else to say).
        assert_eq!(
            finish_answer(t, "They will meet on", true),
            "They will meet on"
        );
        // A summary is one paragraph; a transcript line after it goes.
        assert_eq!(finish_answer(t, "A met B.\nB: yes", true), "A met B.");
        let s = Task::Suggest;
        assert_eq!(
            finish_answer(s, "Hi. Thanks. Please. Soon.", false),
            "Hi. Thanks. Please. Soon."
        );
        // A rewrite the model ended itself keeps its sign-off; a cut one loses its stub.
        assert_eq!(
            finish_answer(s, "Thanks.\nBest,\nSam", false),
            "Thanks.\nBest,\nSam"
        );
        assert_eq!(finish_answer(s, "Thanks. Could you", true), "Thanks.");
    }
}
