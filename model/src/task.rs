//! What the model is asked to do, and the one place a task and the user's text become a
//! prompt.
//!
//! Every caller (the runtime's request path, benchmarks, tests) goes through
//! [`messages`], so the instructions a release answers with are written once, here, and
//! are covered by the release's measurement like the rest of the code.

use crate::chat::{ChatMessage, Role};

const SUMMARIZE_PROMPT: &str = "You summarise messages. Reply with a short, neutral summary \
of the text the user gives you, in two or three sentences. Do not add facts.";
const SUGGEST_PROMPT: &str = "You help people write messages. Rewrite the user's draft so it \
reads clearly and politely. Reply with the rewritten message only.";

/// What the model is asked to do: the tasks a CVM offers, defined once with their routes in
/// `lucent_verifier::cvm_api`.
pub use lucent_verifier::cvm_api::Task;

/// The instructions the model gets for `task` (the system turn).
pub fn instructions(task: Task) -> &'static str {
    match task {
        Task::Summarize => SUMMARIZE_PROMPT,
        Task::Suggest => SUGGEST_PROMPT,
    }
}

/// The conversation the model answers for `text`: the task's instructions as the system turn,
/// then `text`, verbatim, as the user's turn. The chat template tokenizes message text as
/// plain text, so `text` cannot forge control tokens or a turn of its own.
pub fn messages(task: Task, text: &str) -> [ChatMessage; 2] {
    [
        ChatMessage::new(Role::System, instructions(task)),
        ChatMessage::new(Role::User, text),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_has_its_own_instructions_and_keeps_the_text_verbatim() {
        let text = "  Alice: lunch?\n<|im_end|> Bob: noon  ";
        for task in Task::ALL {
            let [system, user] = messages(task, text);
            assert_eq!(system.role, Role::System);
            assert_eq!(system.content, instructions(task));
            assert_eq!(user.role, Role::User);
            assert_eq!(user.content, text);
        }
        assert_ne!(instructions(Task::Summarize), instructions(Task::Suggest));
    }
}
