//! A slice of the evaluation set (`model/eval/`) on the real weights: the runtime's prompt
//! must keep its answers genuine (see `lucent_model::eval`) in at least 90 % of the cases. Needs the weights (`scripts/fetch-model.sh`); without them the
//! test prints SKIPPED and returns.
#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;

use lucent_model::eval::{score_suggestion, score_summary, EvalSet, Problem, Score};
use lucent_model::{default_model_path, LanguageModel, ModelLimits, Task};

#[test]
fn the_runtime_prompt_keeps_nine_in_ten_answers_genuine_on_a_slice_of_the_set() {
    let Some(path) = default_model_path().filter(|p| p.exists()) else {
        println!("SKIPPED: model weights not found; run scripts/fetch-model.sh");
        return;
    };
    let limits = ModelLimits {
        max_input_tokens: 2048,
        max_output_tokens: 128,
    };
    let model = LanguageModel::from_path(&path, limits).unwrap();
    let set = EvalSet::builtin();
    let mut scores: Vec<(String, String, Score)> = Vec::new();
    let mut go_on = |_| ControlFlow::Continue(());
    // Every fourth case of each task: a spread over topics, lengths and speakers.
    for case in set.summaries.iter().step_by(4) {
        let a = model
            .answer(Task::Summarize, &case.text(), 128, &mut go_on)
            .unwrap();
        scores.push((
            case.id.clone(),
            a.text.clone(),
            score_summary(case, &a.text),
        ));
    }
    for case in set.suggestions.iter().step_by(4) {
        let a = model
            .answer(Task::Suggest, &case.draft, 128, &mut go_on)
            .unwrap();
        scores.push((
            case.id.clone(),
            a.text.clone(),
            score_suggestion(case, &a.text),
        ));
    }
    for (id, output, score) in &scores {
        println!(
            "{id}: {:?} {}/{}\n    {output}",
            score.problems, score.facts_found, score.facts_total
        );
    }
    let genuine = scores.iter().filter(|(_, _, s)| s.genuine()).count();
    let cut = scores
        .iter()
        .filter(|(_, _, s)| s.problems.contains(&Problem::CutMidSentence))
        .count();
    println!("genuine {genuine}/{}, cut mid-sentence {cut}", scores.len());
    assert!(
        genuine * 10 >= scores.len() * 9,
        "genuine {genuine} of {}",
        scores.len()
    );
}
