//! Chat messages and the ChatML prompt template SmolLM2-Instruct was trained with (the GGUF's
//! `tokenizer.chat_template`, written out).

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions to the model.
    System,
    /// A person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role name ChatML uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }
}

/// The system prompt the template inserts when the conversation has none.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
/// Opens a ChatML turn.
pub const IM_START: &str = "<|im_start|>";
/// Closes a ChatML turn.
pub const IM_END: &str = "<|im_end|>";

/// A piece of a ChatML prompt: a control token, or text that must be tokenized as plain text
/// (so a message that contains `<|im_end|>` cannot close its own turn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatSegment {
    /// A control token, by its text.
    Control(&'static str),
    /// Plain text.
    Text(String),
}

/// The ChatML prompt for `messages` as segments, ending with an open assistant turn when
/// `add_generation_prompt` is set.
pub fn chatml_segments(messages: &[ChatMessage], add_generation_prompt: bool) -> Vec<ChatSegment> {
    let mut out = Vec::new();
    let mut turn = |role: &str, content: &str| {
        out.push(ChatSegment::Control(IM_START));
        out.push(ChatSegment::Text(format!("{role}\n{content}")));
        out.push(ChatSegment::Control(IM_END));
        out.push(ChatSegment::Text("\n".to_owned()));
    };
    if messages.first().is_some_and(|m| m.role != Role::System) {
        turn(Role::System.as_str(), DEFAULT_SYSTEM_PROMPT);
    }
    for m in messages {
        turn(m.role.as_str(), &m.content);
    }
    if add_generation_prompt {
        out.push(ChatSegment::Control(IM_START));
        out.push(ChatSegment::Text(format!("{}\n", Role::Assistant.as_str())));
    }
    out
}

/// Renders `messages` in ChatML as one string (the GGUF's `tokenizer.chat_template`).
pub fn render_chatml(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    chatml_segments(messages, add_generation_prompt)
        .into_iter()
        .map(|s| match s {
            ChatSegment::Control(c) => c.to_owned(),
            ChatSegment::Text(t) => t,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_system_prompt_is_added_once() {
        let s = render_chatml(&[ChatMessage::new(Role::User, "Hi")], true);
        assert_eq!(
            s,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let s = render_chatml(
            &[
                ChatMessage::new(Role::System, "S"),
                ChatMessage::new(Role::User, "U"),
            ],
            false,
        );
        assert_eq!(
            s,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        );
    }
}
