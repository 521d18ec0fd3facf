//! Config-file typos: the unknown key and the nearest valid one.

/// `error`'s message, plus ``did you mean `KEY`?`` when it is serde's unknown-field error (the
/// message lists the valid keys; the nearest by edit distance is named). Other errors are
/// returned as they are. The message is toml's own, with the line, column and the offending
/// line of the file.
pub fn explain_toml_error(error: &toml::de::Error) -> String {
    with_hint(&error.to_string(), error.message())
}

/// [`explain_toml_error`] without toml's excerpt of the file: the bare message (and the hint),
/// for callers that say where the error is themselves.
pub fn toml_error_message(error: &toml::de::Error) -> String {
    with_hint(error.message(), error.message())
}

fn with_hint(text: &str, message: &str) -> String {
    match suggestion(message) {
        Some(hint) => format!("{}; {hint}", text.trim_end()),
        None => text.trim_end().to_owned(),
    }
}

/// The valid key nearest to `key` (fewest edits; ties go to the first), or `None` when there is
/// none to choose from.
pub fn nearest_key<'a>(key: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    valid
        .into_iter()
        .min_by_key(|candidate| strsim::levenshtein(key, candidate))
}

/// `did you mean `KEY`?` for serde's `unknown field `X`, expected …` (`one of `a`, `b``, `` `a` or
/// `b` ``, `` `a` ``); `None` for any other message or one without candidates.
fn suggestion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.strip_prefix(", expected ")?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let nearest = nearest_key(unknown, candidates.iter().copied())?;
    Some(format!("did you mean `{nearest}`?"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed, to get serde's error")]
    struct Section {
        network: Option<String>,
        params: Option<String>,
        database_url: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed, to get serde's error")]
    struct Two {
        url: Option<String>,
        user: Option<String>,
    }

    fn explained<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        explain_toml_error(&toml::from_str::<T>(text).unwrap_err())
    }

    #[test]
    fn a_misspelt_key_is_named_with_the_nearest_valid_one() {
        let text = explained::<Section>("netwrok = \"signet\"\n");
        assert!(text.contains("unknown field `netwrok`"), "{text}");
        assert!(text.ends_with("did you mean `network`?"), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn the_two_candidate_form_of_the_message_is_understood() {
        assert!(explained::<Two>("usr = \"a\"\n").ends_with("did you mean `user`?"));
    }

    #[test]
    fn the_bare_message_carries_the_hint_without_the_excerpt() {
        let error = toml::from_str::<Section>("netwrok = \"signet\"\n").unwrap_err();
        let text = toml_error_message(&error);
        assert!(text.starts_with("unknown field `netwrok`"), "{text}");
        assert!(text.ends_with("did you mean `network`?"), "{text}");
    }

    #[test]
    fn other_errors_are_left_as_they_are() {
        let text = explained::<Section>("network = 3\n");
        assert!(!text.contains("did you mean"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
    }

    #[test]
    fn the_nearest_key_is_the_one_with_fewest_edits() {
        let valid = ["database_url", "network", "params"];
        assert_eq!(nearest_key("datbase_url", valid), Some("database_url"));
        assert_eq!(nearest_key("parms", valid), Some("params"));
        assert_eq!(nearest_key("x", []), None);
    }
}
