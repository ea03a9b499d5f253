//! Runs the model over the evaluation set (`model/eval/`) and prints, per prompt variant and
//! task: the share of genuine outputs, key-fact recall, outputs cut mid-sentence, length and
//! time. See `lucent_model::eval` for what is scored and `EVAL.md` for the results.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use lucent_model::eval::{score_suggestion, score_summary, EvalSet, Problem, Score, Variant};
use lucent_model::{default_model_path, LanguageModel, ModelLimits, Task};

const USAGE: &str = "\
lucent-model-eval: runs the model over the evaluation set and scores its answers

Usage: lucent-model-eval [OPTIONS]

Options:
  --model PATH        GGUF weights (default: the fetched SmolLM2, see scripts/fetch-model.sh)
  --set DIR           a directory with summaries.json and suggestions.json (default: the
                      set compiled in from model/eval/)
  --variant NAME      a prompt variant, or `all` (default: current); one of:
                      current, original, instruction-in-user-turn, tuned-system-lines, one-shot
  --task TASK         summarize, suggest or both (default: both)
  --limit N           only the first N cases of each task
  --max-tokens N      most tokens generated per answer (default: 128)
  --show              print every output
  --json              one JSON object on standard output instead of the table
  -h, --help          this text

Example:
  cargo run --release -p lucent-model --features eval --bin lucent-model-eval -- --variant all
";

struct Args {
    model: Option<PathBuf>,
    set: Option<PathBuf>,
    variants: Vec<Variant>,
    tasks: Vec<Task>,
    limit: usize,
    max_tokens: usize,
    show: bool,
    json: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        model: None,
        set: None,
        variants: vec![Variant::Current],
        tasks: Task::ALL.to_vec(),
        limit: usize::MAX,
        max_tokens: 128,
        show: false,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--model" => args.model = Some(value("--model")?.into()),
            "--set" => args.set = Some(value("--set")?.into()),
            "--variant" => {
                let v = value("--variant")?;
                args.variants = if v == "all" {
                    Variant::ALL.to_vec()
                } else {
                    vec![Variant::parse(&v).ok_or(format!("no variant {v:?}"))?]
                };
            }
            "--task" => {
                args.tasks = match value("--task")?.as_str() {
                    "summarize" => vec![Task::Summarize],
                    "suggest" => vec![Task::Suggest],
                    "both" => Task::ALL.to_vec(),
                    other => return Err(format!("no task {other:?}")),
                }
            }
            "--limit" => {
                args.limit = value("--limit")?
                    .parse()
                    .map_err(|e| format!("--limit: {e}"))?
            }
            "--max-tokens" => {
                args.max_tokens = value("--max-tokens")?
                    .parse()
                    .map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--show" => args.show = true,
            "--json" => args.json = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(args))
}

/// One task's results under one variant.
#[derive(serde::Serialize)]
struct Row {
    variant: Variant,
    task: &'static str,
    cases: usize,
    genuine: usize,
    facts_found: usize,
    facts_total: usize,
    cut_mid_sentence: usize,
    mean_words: f64,
    mean_seconds: f64,
    results: Vec<CaseResult>,
}

#[derive(serde::Serialize)]
struct CaseResult {
    id: String,
    output: String,
    tokens: usize,
    seconds: f64,
    score: Score,
}

fn run(args: &Args) -> Result<Vec<Row>, String> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => default_model_path().ok_or("no model path: set --model or HOME")?,
    };
    let set = match &args.set {
        Some(dir) => EvalSet::load(dir).map_err(|e| e.to_string())?,
        None => EvalSet::builtin(),
    };
    let limits = ModelLimits {
        max_input_tokens: 2048,
        max_output_tokens: args.max_tokens,
    };
    let started = Instant::now();
    let model = LanguageModel::from_path(&path, limits)
        .map_err(|e| format!("{}: {e} (run scripts/fetch-model.sh)", path.display()))?;
    eprintln!(
        "loaded {} in {:.2} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    for &variant in &args.variants {
        for &task in &args.tasks {
            let cases: Vec<(String, String)> = match task {
                Task::Summarize => set
                    .summaries
                    .iter()
                    .take(args.limit)
                    .map(|c| (c.id.clone(), c.text()))
                    .collect(),
                Task::Suggest => set
                    .suggestions
                    .iter()
                    .take(args.limit)
                    .map(|c| (c.id.clone(), c.draft.clone()))
                    .collect(),
            };
            let mut results = Vec::new();
            for (i, (id, text)) in cases.iter().enumerate() {
                let t = Instant::now();
                let answer = model
                    .answer_messages(
                        task,
                        &variant.messages(task, text),
                        args.max_tokens,
                        &mut |_| ControlFlow::Continue(()),
                    )
                    .map_err(|e| format!("{id}: {e}"))?;
                let seconds = t.elapsed().as_secs_f64();
                let score = match task {
                    Task::Summarize => score_summary(&set.summaries[i], &answer.text),
                    Task::Suggest => score_suggestion(&set.suggestions[i], &answer.text),
                };
                eprintln!(
                    "[{} {:?} {}/{}] {id}: {}, {}/{} facts, {} tokens, {seconds:.1} s",
                    variant.name(),
                    task,
                    i + 1,
                    cases.len(),
                    if score.genuine() {
                        "genuine".to_string()
                    } else {
                        format!("{:?}", score.problems)
                    },
                    score.facts_found,
                    score.facts_total,
                    answer.tokens,
                );
                if args.show {
                    eprintln!("    {}", answer.text.replace('\n', "\n    "));
                }
                results.push(CaseResult {
                    id: id.clone(),
                    output: answer.text,
                    tokens: answer.tokens,
                    seconds,
                    score,
                });
            }
            let n = results.len().max(1) as f64;
            rows.push(Row {
                variant,
                task: task.path().trim_start_matches("/v1/"),
                cases: results.len(),
                genuine: results.iter().filter(|r| r.score.genuine()).count(),
                facts_found: results.iter().map(|r| r.score.facts_found).sum(),
                facts_total: results.iter().map(|r| r.score.facts_total).sum(),
                cut_mid_sentence: results
                    .iter()
                    .filter(|r| r.score.problems.contains(&Problem::CutMidSentence))
                    .count(),
                mean_words: results.iter().map(|r| r.score.words as f64).sum::<f64>() / n,
                mean_seconds: results.iter().map(|r| r.seconds).sum::<f64>() / n,
                results,
            });
        }
    }
    Ok(rows)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("lucent-model-eval: {e}");
            return ExitCode::from(2);
        }
    };
    let rows = match run(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lucent-model-eval: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("lucent-model-eval: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "| variant | task | cases | genuine | key-fact recall | cut mid-sentence | mean words | mean s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} % ({}/{}) | {:.2} ({}/{}) | {} | {:.1} | {:.2} |",
            r.variant.name(),
            r.task,
            r.cases,
            100.0 * r.genuine as f64 / r.cases.max(1) as f64,
            r.genuine,
            r.cases,
            r.facts_found as f64 / r.facts_total.max(1) as f64,
            r.facts_found,
            r.facts_total,
            r.cut_mid_sentence,
            r.mean_words,
            r.mean_seconds,
        );
    }
    ExitCode::SUCCESS
}
