//! Text taken from input, bounded before it reaches the log.
//!
//! A presentation is the holder's to write: its `iss`, `kid`, `typ` or a
//! Disclosure's claim name can be any length, and control characters cost
//! six bytes each once written as JSON (`\u0001`). Whatever of it a
//! verification outcome keeps (in a step's detail, as the issuer, as a claim
//! path) goes through [`text`] first, so one presentation cannot make its own
//! record too large for the log and keep its attempt unrecorded.

/// The most JSON bytes one bounded text may take, marker included.
pub const MAX_TEXT_BYTES: usize = 256;

/// What a cut text ends with, so that it cannot be mistaken for a value.
pub const CUT_MARKER: &str = "…[cut]";

/// The bytes `c` takes inside a JSON string (RFC 8785 escapes control
/// characters as `\u00xx`, and `"` and `\` with a backslash).
fn json_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `input` if it takes at most [`MAX_TEXT_BYTES`] as a JSON string, else its
/// longest prefix (cut on a character boundary) that fits with
/// [`CUT_MARKER`] after it.
pub fn text(input: &str) -> String {
    let cost: usize = input.chars().map(json_cost).sum();
    if cost <= MAX_TEXT_BYTES {
        return input.to_owned();
    }
    let budget = MAX_TEXT_BYTES - CUT_MARKER.len();
    let mut spent = 0;
    let mut end = 0;
    for (at, c) in input.char_indices() {
        spent += json_cost(c);
        if spent > budget {
            break;
        }
        end = at + c.len_utf8();
    }
    format!("{}{CUT_MARKER}", &input[..end])
}

/// Whether `input` was cut by [`text`].
pub fn is_cut(input: &str) -> bool {
    input.ends_with(CUT_MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_len(s: &str) -> usize {
        serde_json::to_string(s).unwrap().len() - 2
    }

    #[test]
    fn short_texts_are_kept_whole() {
        assert_eq!(text("did:example:issuer"), "did:example:issuer");
        let exactly = "a".repeat(MAX_TEXT_BYTES);
        assert_eq!(text(&exactly), exactly);
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_and_marked() {
        for input in [
            "a".repeat(70_000),
            "ü".repeat(10_000),
            "\u{1}".repeat(11_000),
            "😀x".repeat(5_000),
            "\"\\".repeat(1_000),
        ] {
            let bounded = text(&input);
            assert!(is_cut(&bounded), "{bounded:?}");
            assert!(
                json_len(&bounded) <= MAX_TEXT_BYTES,
                "{}",
                json_len(&bounded)
            );
            assert!(input.starts_with(bounded.trim_end_matches(CUT_MARKER)));
        }
    }
}
