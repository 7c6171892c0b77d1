//! The word count example's tokenizer against the plain definition:
//! maximal runs of ASCII letters, digits and `_`, lowercased, on any text.

#[allow(dead_code)] // Only the tokenizer is tested here.
#[path = "../examples/word_count/job.rs"]
mod job;

use proptest::prelude::*;

fn plain(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .map(|t| t.to_ascii_lowercase())
        .collect()
}

fn tokens(text: &str, start: usize) -> Vec<String> {
    job::Tokens::new(text.to_string(), start).map(|w| w.to_string()).collect()
}

/// Text of words of every length around the 24-byte inline buffer (and eight-byte steps), with
/// separators of every kind: ASCII punctuation, bytes next to the word ranges (`/`, `:`,
/// `@`, `[`, `` ` ``, `{`, DEL) and multi-byte UTF-8.
fn text() -> impl Strategy<Value = String> {
    let word = proptest::string::string_regex("[A-Za-z0-9_]{1,40}").unwrap();
    let separator =
        proptest::sample::select(vec![" ", "\t", "/", ":", "@", "[", "`", "{", "\u{7f}", "é", "—", ",\"", "\0"]);
    proptest::collection::vec((separator, word), 0..30)
        .prop_map(|parts| parts.into_iter().flat_map(|(s, w)| [s.to_string(), w]).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tokens_are_the_plain_split(text in text()) {
        prop_assert_eq!(tokens(&text, 0), plain(&text));
    }

    #[test]
    fn any_text_splits_as_plain(text in any::<String>()) {
        prop_assert_eq!(tokens(&text, 0), plain(&text));
    }

    #[test]
    fn tokens_start_where_told(text in text(), start in 0usize..60) {
        let start = (0..=start.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        prop_assert_eq!(tokens(&text, start), plain(&text[start..]));
    }
}
