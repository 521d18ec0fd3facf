//! Text that came from outside the process (a committee member's error body, a node's error
//! message, why a queue message could not be applied) is made safe before it is stored, the
//! same way on every backend. PostgreSQL refuses a NUL in text and fails the whole write, so
//! one byte from a peer could stop a service; and a peer's answer can be as long as it likes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest error text kept, in bytes; longer text is cut and ends with a marker.
pub const MAX_ERROR_TEXT: usize = 2048;

/// `text` made safe to store and show: every control character but newline and tab is
/// written as an escape (`\u{0}` for a NUL), and beyond [`MAX_ERROR_TEXT`] bytes the text is
/// cut at a character boundary and ends with `… [N bytes cut]`.
pub fn error_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_ERROR_TEXT) + 32);
    for (at, c) in text.char_indices() {
        let before = out.len();
        if c.is_control() && c != '\n' && c != '\t' {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        if out.len() > MAX_ERROR_TEXT {
            out.truncate(before);
            let _ = write!(out, "… [{} bytes cut]", text.len() - at);
            return out;
        }
    }
    out
}

/// `text` with each NUL replaced by U+FFFD, for text that must otherwise be kept as received.
pub(crate) fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_error_text_is_kept_as_it_is() {
        let text = "signer 3: HTTP 500: {\"errorCode\":\"INTERNAL\",\"message\":\"été\"}\n\tat x";
        assert_eq!(error_text(text), text);
    }

    #[test]
    fn control_characters_other_than_newline_and_tab_are_escaped() {
        assert_eq!(
            error_text("a\0b\u{1b}[31mc\rd"),
            "a\\u{0}b\\u{1b}[31mc\\u{d}d"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_a_marker() {
        let text = "é".repeat(MAX_ERROR_TEXT); // 2 bytes each
        let stored = error_text(&text);
        let kept = "é".repeat(MAX_ERROR_TEXT / 2);
        assert_eq!(stored, format!("{kept}… [{} bytes cut]", MAX_ERROR_TEXT));
    }

    #[test]
    fn text_of_exactly_the_limit_is_not_cut() {
        let text = "x".repeat(MAX_ERROR_TEXT);
        assert_eq!(error_text(&text), text);
        let text = "x".repeat(MAX_ERROR_TEXT + 1);
        assert_eq!(
            error_text(&text),
            format!("{}… [1 bytes cut]", "x".repeat(MAX_ERROR_TEXT))
        );
    }

    #[test]
    fn nul_is_replaced_and_nothing_else_changes() {
        assert_eq!(without_nul("{\"a\":\0}\u{1}"), "{\"a\":\u{fffd}}\u{1}");
        assert!(matches!(without_nul("{}"), Cow::Borrowed("{}")));
    }
}
