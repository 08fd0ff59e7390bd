//! Stripping the ids the seed spliced into text.

/// Removes trailing `Message ID: N`, `Function Call ID: N` and `Function_call_id: N`
/// lines (in any order and number) and the blank lines before them.
pub fn strip_ids(text: &str) -> String {
    let mut end = text.trim_end().len();
    loop {
        let head = &text[..end];
        let start = head.rfind('\n').map_or(0, |i| i + 1);
        if !is_id_line(&head[start..]) {
            break;
        }
        end = text[..start].trim_end().len();
        if start == 0 {
            end = 0;
            break;
        }
    }
    if end == text.trim_end().len() {
        // Nothing stripped: keep the text exactly, trailing space included.
        return text.to_string();
    }
    text[..end].to_string()
}

fn is_id_line(line: &str) -> bool {
    let line = line.trim();
    let lower = line.to_ascii_lowercase();
    ["message id:", "function call id:", "function_call_id:"]
        .iter()
        .any(|p| {
            lower.strip_prefix(p).is_some_and(|rest| {
                let rest = rest.trim();
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::strip_ids;

    #[test]
    fn trailing_id_lines_go_everything_else_stays() {
        assert_eq!(strip_ids("Hello\nMessage ID: 12"), "Hello");
        assert_eq!(strip_ids("Hello\n\nMessage ID: 12\n"), "Hello");
        assert_eq!(strip_ids("Hi\nMessage ID: 3\nFunction Call ID: 4"), "Hi");
        assert_eq!(strip_ids("{\"a\": 1}\nFunction_call_id: 7"), "{\"a\": 1}");
        assert_eq!(strip_ids("Message ID: 5"), "");
        assert_eq!(
            strip_ids("My Message ID: is secret"),
            "My Message ID: is secret"
        );
        assert_eq!(
            strip_ids("Message ID: 5 is in the middle\nok"),
            "Message ID: 5 is in the middle\nok"
        );
        assert_eq!(strip_ids("two spaces  "), "two spaces  ");
        assert_eq!(
            strip_ids("Message ID: [message_id]"),
            "Message ID: [message_id]"
        );
    }
}
