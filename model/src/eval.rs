//! The evaluation set (`model/eval/`) and how an answer is scored against it.
//!
//! A summary case is a conversation and the key facts a summary must carry; a suggestion
//! case is a draft, the facts its rewrite must keep and the words it must drop. Each fact is
//! a list of alternatives, found when any of them is a case-insensitive substring of the
//! output. An output is *genuine* when it is none of: empty, an apology or refusal, a
//! verbatim copy of an input message (or of the draft), a transcript (`Name:` lines), or cut
//! off mid-sentence. Recall counts the facts of a non-genuine output as missed.
//!
//! Built with the `eval` feature; the `lucent-model-eval` command runs the model over the set.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, Role};
use crate::task::{self, ends_a_sentence, Task};

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalMessage {
    /// Who wrote it.
    pub from: String,
    /// What they wrote.
    pub text: String,
}

/// A conversation to summarise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryCase {
    /// Unique name.
    pub id: String,
    /// What the conversation is about (plans, logistics, …).
    pub topic: String,
    /// The conversation, oldest first.
    pub messages: Vec<EvalMessage>,
    /// The key facts, each a list of alternatives.
    pub facts: Vec<Vec<String>>,
}

/// A draft to rewrite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionCase {
    /// Unique name.
    pub id: String,
    /// The user's draft.
    pub draft: String,
    /// What the rewrite must keep, each a list of alternatives.
    pub keep: Vec<Vec<String>>,
    /// Words or phrases the rewrite must not contain.
    pub avoid: Vec<String>,
}

/// The whole set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalSet {
    /// Conversations to summarise.
    pub summaries: Vec<SummaryCase>,
    /// Drafts to rewrite.
    pub suggestions: Vec<SuggestionCase>,
}

/// Why a set cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("evaluation set {file}: {why}")]
pub struct EvalSetError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub why: String,
}

impl EvalSet {
    /// The set committed in `model/eval/`, compiled in.
    pub fn builtin() -> EvalSet {
        // The committed files parse; the crate's tests check it.
        EvalSet::parse(
            include_str!("../eval/summaries.json"),
            include_str!("../eval/suggestions.json"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads `summaries.json` and `suggestions.json` from `dir`.
    pub fn load(dir: &Path) -> Result<EvalSet, EvalSetError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| EvalSetError {
                file: path.display().to_string(),
                why: e.to_string(),
            })
        };
        EvalSet::parse(&read("summaries.json")?, &read("suggestions.json")?)
    }

    /// Parses the two files' contents and checks each case has what scoring needs.
    pub fn parse(summaries: &str, suggestions: &str) -> Result<EvalSet, EvalSetError> {
        let err = |file: &str, why: String| EvalSetError {
            file: file.into(),
            why,
        };
        let set = EvalSet {
            summaries: serde_json::from_str(summaries)
                .map_err(|e| err("summaries.json", e.to_string()))?,
            suggestions: serde_json::from_str(suggestions)
                .map_err(|e| err("suggestions.json", e.to_string()))?,
        };
        let mut ids = std::collections::HashSet::new();
        for c in &set.summaries {
            if !ids.insert(c.id.as_str()) {
                return Err(err("summaries.json", format!("id {} twice", c.id)));
            }
            if c.messages.is_empty() || c.facts.is_empty() {
                return Err(err(
                    "summaries.json",
                    format!("{}: no messages or facts", c.id),
                ));
            }
        }
        for c in &set.suggestions {
            if !ids.insert(c.id.as_str()) {
                return Err(err("suggestions.json", format!("id {} twice", c.id)));
            }
        }
        for facts in set
            .summaries
            .iter()
            .flat_map(|c| &c.facts)
            .chain(set.suggestions.iter().flat_map(|c| &c.keep))
        {
            if facts.is_empty() || facts.iter().any(|a| a.trim().is_empty()) {
                return Err(err("set", "a fact with an empty alternative".into()));
            }
        }
        Ok(set)
    }
}

impl SummaryCase {
    /// The conversation as a client sends it for summarising: one `Name: text` line per
    /// message.
    pub fn text(&self) -> String {
        self.messages
            .iter()
            .map(|m| format!("{}: {}", m.from, m.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What is wrong with an output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Nothing but whitespace.
    Empty,
    /// An apology or a refusal instead of the task.
    Apology,
    /// A whole input message (or the whole draft) repeated verbatim.
    CopiedInput,
    /// A `Name:` line, as in the transcript.
    TranscriptLine,
    /// The last sentence is not finished.
    CutMidSentence,
    /// A word the rewrite had to drop (suggestions; does not make it non-genuine).
    KeptWord(String),
}

impl Problem {
    /// Whether the output still counts as genuine with this problem.
    pub fn is_genuine(&self) -> bool {
        matches!(self, Problem::KeptWord(_))
    }
}

/// One output's score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Score {
    /// Facts found (0 when the output is not genuine).
    pub facts_found: usize,
    /// Facts the case lists.
    pub facts_total: usize,
    /// Problems found; genuine when none is more than a kept word.
    pub problems: Vec<Problem>,
    /// Words in the output.
    pub words: usize,
}

impl Score {
    /// Genuine: none of the problems that make an output unusable.
    pub fn genuine(&self) -> bool {
        self.problems.iter().all(Problem::is_genuine)
    }
}

const APOLOGY_MARKERS: [&str; 9] = [
    "i'm sorry",
    "i am sorry",
    "i apologi",
    "sorry for the confusion",
    "i can't",
    "i cannot",
    "i'm unable",
    "i am unable",
    "as an ai",
];

/// How many of `facts` occur in `output` (any alternative, case-insensitive).
pub fn facts_found(facts: &[Vec<String>], output: &str) -> usize {
    let lower = output.to_lowercase();
    facts
        .iter()
        .filter(|alts| alts.iter().any(|a| lower.contains(&a.to_lowercase())))
        .count()
}

fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The problems every output is checked for; `inputs` are the texts it must not copy.
fn common_problems(output: &str, inputs: &[&str], speakers: &[&str]) -> Vec<Problem> {
    let mut problems = Vec::new();
    if output.trim().is_empty() {
        return vec![Problem::Empty];
    }
    let lower = output.to_lowercase();
    if APOLOGY_MARKERS.iter().any(|m| lower.contains(m)) {
        problems.push(Problem::Apology);
    }
    let out = normalise(output);
    // A copy of a message of four words or more; shorter ones ("ok, see you") are phrases
    // a summary may well use.
    if inputs.iter().any(|i| {
        let i = normalise(i);
        i.split(' ').count() >= 4 && out.contains(&i)
    }) {
        problems.push(Problem::CopiedInput);
    }
    let transcript = output.lines().any(|line| {
        let line = line.trim_start().trim_start_matches(['-', '*', ' ']);
        line.split_once(':').is_some_and(|(name, _)| {
            let name = name.trim();
            speakers.iter().any(|s| s.eq_ignore_ascii_case(name))
        })
    });
    if transcript {
        problems.push(Problem::TranscriptLine);
    }
    // A short last line without a full stop is a sign-off ("Best, Sam"), not a cut.
    let last_line = output.trim_end().lines().last().unwrap_or_default();
    let sign_off = output.trim_end().contains('\n') && last_line.split_whitespace().count() <= 3;
    if !ends_a_sentence(output) && !sign_off {
        problems.push(Problem::CutMidSentence);
    }
    problems
}

/// Scores a summary of `case`.
pub fn score_summary(case: &SummaryCase, output: &str) -> Score {
    let inputs: Vec<&str> = case.messages.iter().map(|m| m.text.as_str()).collect();
    let speakers: Vec<&str> = case.messages.iter().map(|m| m.from.as_str()).collect();
    let problems = common_problems(output, &inputs, &speakers);
    finish(problems, &case.facts, output)
}

/// Scores a rewrite of `case`'s draft.
pub fn score_suggestion(case: &SuggestionCase, output: &str) -> Score {
    let mut problems = common_problems(output, &[case.draft.as_str()], &[]);
    let lower = output.to_lowercase();
    problems.extend(
        case.avoid
            .iter()
            .filter(|w| lower.contains(&w.to_lowercase()))
            .map(|w| Problem::KeptWord(w.clone())),
    );
    finish(problems, &case.keep, output)
}

fn finish(problems: Vec<Problem>, facts: &[Vec<String>], output: &str) -> Score {
    let mut score = Score {
        facts_found: 0,
        facts_total: facts.len(),
        problems,
        words: output.split_whitespace().count(),
    };
    if score.genuine() {
        score.facts_found = facts_found(facts, output);
    }
    score
}

/// A way of asking the model, tried on the set. [`Variant::Current`] is what the runtime
/// does ([`task::messages`]); the others are the alternatives measured against it, kept so
/// that every number in `EVAL.md` can be produced again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The runtime's prompt.
    Current,
    /// The prompt before evaluation: task instructions as the system turn, the text alone as
    /// the user turn.
    Original,
    /// The model's own default system line; the instruction and the text in the user turn.
    InstructionInUserTurn,
    /// The system lines of the summarising and rewriting data the model was tuned on.
    TunedSystemLines,
    /// `TunedSystemLines` with one worked example before the text.
    OneShot,
    /// Summaries: two worked examples; rewrites: the tuned "professional" system line, no
    /// example.
    TwoShotFormal,
    /// Summaries: one worked example about work rather than errands.
    OneShotWorkExample,
    /// Summaries: one worked example, each message given as `Name said: "text"` rather than a
    /// transcript line.
    OneShotReported,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 8] = [
        Variant::Current,
        Variant::Original,
        Variant::InstructionInUserTurn,
        Variant::TunedSystemLines,
        Variant::OneShot,
        Variant::TwoShotFormal,
        Variant::OneShotWorkExample,
        Variant::OneShotReported,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Current => "current",
            Variant::Original => "original",
            Variant::InstructionInUserTurn => "instruction-in-user-turn",
            Variant::TunedSystemLines => "tuned-system-lines",
            Variant::OneShot => "one-shot",
            Variant::TwoShotFormal => "two-shot-formal",
            Variant::OneShotWorkExample => "one-shot-work-example",
            Variant::OneShotReported => "one-shot-reported",
        }
    }

    /// The variant called `name`.
    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The conversation the model answers for `text` under this variant.
    pub fn messages(self, task: Task, text: &str) -> Vec<ChatMessage> {
        let sys = |s: &str| ChatMessage::new(Role::System, s);
        let user = |s: String| ChatMessage::new(Role::User, s);
        let assistant = |s: &str| ChatMessage::new(Role::Assistant, s);
        match (self, task) {
            (Variant::Current, _) => task::messages(task, text),
            (Variant::Original, Task::Summarize) => vec![
                sys(
                    "You summarise messages. Reply with a short, neutral summary of the text \
                     the user gives you, in two or three sentences. Do not add facts.",
                ),
                user(text.into()),
            ],
            (Variant::Original, Task::Suggest) => vec![
                sys(
                    "You help people write messages. Rewrite the user's draft so it reads \
                     clearly and politely. Reply with the rewritten message only.",
                ),
                user(text.into()),
            ],
            (Variant::InstructionInUserTurn, Task::Summarize) => vec![
                sys(DEFAULT_SYSTEM),
                user(format!(
                    "Summarize the following conversation in one or two sentences.\n\n{text}"
                )),
            ],
            (Variant::InstructionInUserTurn, Task::Suggest) => vec![
                sys(DEFAULT_SYSTEM),
                user(format!(
                    "Rewrite this message so it is clear and polite. Reply with the \
                     rewritten message only.\n\n{text}"
                )),
            ],
            (Variant::TunedSystemLines, _) => {
                vec![sys(tuned_system_line(task)), user(text.into())]
            }
            (Variant::OneShot, Task::Summarize) => vec![
                sys(tuned_system_line(task)),
                user(SUMMARIZE_EXAMPLE[0].into()),
                assistant(SUMMARIZE_EXAMPLE[1]),
                user(text.into()),
            ],
            (Variant::TwoShotFormal, Task::Summarize) => vec![
                sys(tuned_system_line(task)),
                user(SUMMARIZE_EXAMPLE[0].into()),
                assistant(SUMMARIZE_EXAMPLE[1]),
                user(
                    "Sam: Team, the client call moved from Monday to Wednesday.\n\
                     Rita: What time?\nSam: 2pm, same link.\nJo: I'll update the slides \
                     by Tuesday.\nRita: Thanks, I'll send the agenda."
                        .into(),
                ),
                assistant(
                    "The client call moved to Wednesday at 2 pm on the same link. Jo will \
                     update the slides by Tuesday and Rita will send the agenda.",
                ),
                user(text.into()),
            ],
            (Variant::OneShotWorkExample, Task::Summarize) => vec![
                sys(tuned_system_line(task)),
                user(
                    "Sam: Team, the client call moved from Monday to Wednesday.\n\
                     Rita: What time?\nSam: 2pm, same link.\nJo: I'll update the slides \
                     by Tuesday."
                        .into(),
                ),
                assistant(
                    "The client call moved to Wednesday at 2 pm, and Jo will update the \
                     slides by Tuesday.",
                ),
                user(text.into()),
            ],
            (Variant::OneShotReported, Task::Summarize) => vec![
                sys(tuned_system_line(task)),
                user(reported(SUMMARIZE_EXAMPLE[0])),
                assistant(SUMMARIZE_EXAMPLE[1]),
                user(reported(text)),
            ],
            (Variant::OneShotWorkExample | Variant::OneShotReported, Task::Suggest) => {
                vec![sys(tuned_system_line(task)), user(text.into())]
            }
            (Variant::TwoShotFormal, Task::Suggest) => vec![
                sys(
                    "You're an AI assistant for text re-writing. Rewrite the input text to \
                     make it more professional and formal while retaining its essential \
                     content.",
                ),
                user(text.into()),
            ],
            (Variant::OneShot, Task::Suggest) => vec![
                sys(tuned_system_line(task)),
                user("you never answer your phone, call me back NOW about the invoice".into()),
                assistant(
                    "Could you please call me back when you have a moment? I'd like to talk \
                     about the invoice.",
                ),
                user(text.into()),
            ],
        }
    }
}

/// A transcript's `Name: text` lines as `Name said: "text"`; other lines as they are.
fn reported(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once(": ") {
            Some((name, said)) if !name.is_empty() && name.split_whitespace().count() <= 3 => {
                format!("{name} said: \"{said}\"")
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The worked example of the one- and two-shot variants.
const SUMMARIZE_EXAMPLE: [&str; 2] = [
    "Maya: Can you pick up the cake on Saturday?\nLeo: Sure, what time?\n\
     Maya: The bakery closes at 4, so before then.\nLeo: OK, I'll get it at 3.",
    "Leo will pick up the cake from the bakery at 3 pm on Saturday, before it closes at 4.",
];
/// SmolLM2's default system line (its chat template's).
const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The system lines of the summarising and rewriting data the model was tuned on: the
/// runtime's instructions since the evaluation (`Current` and `TunedSystemLines` ask the
/// same).
fn tuned_system_line(task: Task) -> &'static str {
    task::instructions(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> SummaryCase {
        SummaryCase {
            id: "t".into(),
            topic: "plans".into(),
            messages: vec![
                EvalMessage {
                    from: "Ana".into(),
                    text: "Shall we meet at the station on Friday at 6?".into(),
                },
                EvalMessage {
                    from: "Ben".into(),
                    text: "Yes, see you".into(),
                },
            ],
            facts: vec![
                vec!["friday".into()],
                vec!["station".into()],
                vec!["6".into(), "six".into()],
            ],
        }
    }

    #[test]
    fn the_builtin_set_parses_and_has_the_promised_size() {
        let set = EvalSet::builtin();
        assert!(set.summaries.len() >= 40, "{}", set.summaries.len());
        assert!(set.suggestions.len() >= 20, "{}", set.suggestions.len());
        for c in &set.summaries {
            assert!((2..=20).contains(&c.messages.len()), "{}", c.id);
            let mut speakers: Vec<&str> = c.messages.iter().map(|m| m.from.as_str()).collect();
            speakers.sort_unstable();
            speakers.dedup();
            assert!((2..=5).contains(&speakers.len()), "{}", c.id);
        }
    }

    #[test]
    fn a_good_summary_is_genuine_and_finds_its_facts() {
        let s = score_summary(
            &case(),
            "Ana and Ben will meet at the station on Friday at six.",
        );
        assert!(s.genuine(), "{s:?}");
        assert_eq!((s.facts_found, s.facts_total), (3, 3));
    }

    #[test]
    fn each_failure_is_named_and_loses_its_facts() {
        let c = case();
        let cases = [
            ("   ", Problem::Empty),
            (
                "I'm sorry for the confusion. They meet Friday at the station.",
                Problem::Apology,
            ),
            (
                "Shall we meet at the station on Friday at 6? They agreed.",
                Problem::CopiedInput,
            ),
            (
                "Ana: Friday at the station.\nBen: yes.",
                Problem::TranscriptLine,
            ),
            (
                "They meet at the station on Friday at",
                Problem::CutMidSentence,
            ),
        ];
        for (output, problem) in cases {
            let s = score_summary(&c, output);
            assert!(s.problems.contains(&problem), "{output:?}: {s:?}");
            assert!(!s.genuine());
            assert_eq!(s.facts_found, 0, "{output:?}");
        }
        // A short message repeated is a phrase, not a copy.
        assert!(score_summary(&c, "Ben says yes, see you at six.").genuine());
    }

    #[test]
    fn a_rewrite_that_keeps_an_insult_is_flagged_but_genuine() {
        let c = SuggestionCase {
            id: "s".into(),
            draft: "send the report by friday, idiot".into(),
            keep: vec![vec!["report".into()], vec!["friday".into()]],
            avoid: vec!["idiot".into()],
        };
        let good = score_suggestion(&c, "Could you send the report by Friday, please?");
        assert!(good.genuine() && good.problems.is_empty(), "{good:?}");
        assert_eq!(good.facts_found, 2);
        let rude = score_suggestion(&c, "Please send the report by Friday, you idiot.");
        assert!(rude.genuine());
        assert_eq!(rude.problems, vec![Problem::KeptWord("idiot".into())]);
        let copy = score_suggestion(&c, "send the report by friday, idiot");
        assert!(!copy.genuine());
    }

    #[test]
    fn every_variant_keeps_the_text_and_ends_with_it() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.name()), Some(v));
            for task in Task::ALL {
                let m = v.messages(task, "Ana: hi");
                let last = &m.last().unwrap().content;
                assert!(last.contains("Ana") && last.contains("hi"), "{v:?}");
                assert_eq!(m.last().unwrap().role, Role::User);
            }
        }
    }
}
