//! A guard against the commonest error of small models: recording the user's request
//! ("wants a haiku") or the assistant's knowledge ("TCP is reliable") as a fact about
//! the user. Measured on a 1.5B model, the prompt alone does not stop it.
//!
//! An operation is kept only when its content or observations share a word with a
//! sentence in which the user speaks about themselves (first person). A conversation
//! where the user never does yields no operations. The check needs first-person
//! markers, known here for English, French, Spanish, German, Portuguese and Italian;
//! for user text mostly in other scripts it is skipped rather than dropping everything.

use convo_core::{Item, ItemBody, ProfileOp, Role};
use std::collections::HashSet;

/// Words that mark a sentence as the user speaking about themselves.
const FIRST_PERSON: &[&str] = &[
    "i", "i'm", "im", "i've", "i'd", "i'll", "my", "mine", "myself", "we", "we're", "we've", "our",
    "ours", "je", "moi", "mon", "ma", "mes", "nous", "notre", "yo", "mi", "mis", "soy", "estoy",
    "tengo", "vivo", "ich", "mein", "meine", "meinen", "mir", "mich", "wir", "unser", "eu", "meu",
    "minha", "sou", "tenho", "io", "mio", "mia", "miei", "sono", "ho",
];

/// Words too common to show that an operation comes from a sentence.
const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "are",
    "was",
    "were",
    "for",
    "with",
    "has",
    "have",
    "had",
    "their",
    "they",
    "them",
    "this",
    "that",
    "from",
    "about",
    "user",
    "users",
    "mentioned",
    "mentions",
    "said",
    "says",
    "states",
    "stated",
    "asked",
    "asks",
    "likes",
    "like",
    "who",
    "what",
    "which",
    "into",
    "also",
    "very",
    "some",
    "any",
    "can",
    "you",
    "your",
    "its",
    "his",
    "her",
    "she",
    "him",
    "not",
    "but",
    "all",
    "one",
    "conversation",
    "message",
];

/// The sentences in which the user speaks in the first person, as word sets; `None`
/// when the check cannot apply (no user text found, or text mostly in a script whose
/// first-person words are not known here).
pub fn user_statements(items: &[Item], chat_log: Option<&str>) -> Option<Vec<HashSet<String>>> {
    let mut texts: Vec<String> = items
        .iter()
        .filter_map(|i| match &i.body {
            ItemBody::Message {
                role: Role::User,
                content,
            } => Some(content.plain_text()),
            _ => None,
        })
        .collect();
    if texts.is_empty() {
        texts = chat_log
            .unwrap_or("")
            .lines()
            .filter_map(|l| {
                let (who, said) = l.split_once(':')?;
                who.trim()
                    .eq_ignore_ascii_case("user")
                    .then(|| said.to_string())
            })
            .collect();
    }
    if texts.is_empty() {
        return None;
    }
    let all: String = texts.join("\n");
    let letters = all.chars().filter(|c| c.is_alphabetic()).count();
    let latin = all
        .chars()
        .filter(|c| c.is_alphabetic() && (*c as u32) < 0x250)
        .count();
    if letters == 0 || latin * 10 < letters * 7 {
        return None;
    }
    let statements = all
        .split(['.', '!', '?', '\n', ';'])
        .map(words)
        .filter(|w| {
            w.iter().any(|x| {
                FIRST_PERSON.contains(&x.as_str()) || x.starts_with("j'") || x.starts_with("m'")
            })
        })
        .map(|w| w.into_iter().map(|x| stem(&x)).collect())
        .collect();
    Some(statements)
}

/// Keeps the operations grounded in a first-person statement; returns them and how
/// many were dropped.
pub fn keep_grounded(
    ops: Vec<ProfileOp>,
    statements: &[HashSet<String>],
) -> (Vec<ProfileOp>, usize) {
    let before = ops.len();
    let kept: Vec<ProfileOp> = ops
        .into_iter()
        .filter(|op| {
            let text = match op {
                ProfileOp::AddField {
                    content,
                    observations,
                    ..
                }
                | ProfileOp::AppendContentByField {
                    content,
                    observations,
                    ..
                } => format!("{content} {observations}"),
                _ => return true,
            };
            let op_words: Vec<String> = words(&text)
                .into_iter()
                .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
                .map(|w| stem(&w))
                .collect();
            statements
                .iter()
                .any(|s| op_words.iter().any(|w| s.contains(w)))
        })
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('’', "'").to_lowercase())
        .collect()
}

/// A crude stem so "cats" meets "cat".
fn stem(w: &str) -> String {
    let w = w.trim_matches('\'');
    match w.strip_suffix('s') {
        Some(s) if s.chars().count() >= 3 => s.to_string(),
        _ => w.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(content: &str, observations: &str) -> ProfileOp {
        ProfileOp::AddField {
            field_name: "F".into(),
            content: content.into(),
            observations: observations.into(),
        }
    }

    fn statements(log: &str) -> Option<Vec<HashSet<String>>> {
        user_statements(&[], Some(log))
    }

    #[test]
    fn facts_the_user_stated_are_kept() {
        let s = statements(
            "User: I'm a vegetarian and I live in Porto with my two cats. Can you suggest a dinner?\n\
             Assistant: Try a chickpea curry.",
        )
        .unwrap();
        let (kept, dropped) = keep_grounded(
            vec![
                op("Vegetarian", "User mentioned they are a vegetarian."),
                op("Lives in Porto", ""),
                op("Has a cat", ""),
                op("Chickpea and spinach curry", "Assistant's suggestion"),
            ],
            &s,
        );
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(dropped, 1);
    }

    #[test]
    fn requests_and_knowledge_are_dropped() {
        let s = statements("User: Write me a haiku about autumn rain.\nAssistant: Cold rain ...")
            .unwrap();
        let (kept, _) = keep_grounded(vec![op("haiku", "The user asked for a haiku.")], &s);
        assert!(kept.is_empty());
        let s = statements("User: Explain TCP vs UDP simply.").unwrap();
        let (kept, _) = keep_grounded(vec![op("TCP is like a phone call", "")], &s);
        assert!(kept.is_empty());
    }

    #[test]
    fn other_languages_and_scripts() {
        let s = statements("User: Je suis végétarien et j'habite à Lyon.").unwrap();
        let (kept, _) = keep_grounded(vec![op("Habite à Lyon", "")], &s);
        assert_eq!(kept.len(), 1);
        assert!(statements("User: 我住在北京，我有两只猫。").is_none());
        assert!(statements("Assistant: hello").is_none());
    }
}
