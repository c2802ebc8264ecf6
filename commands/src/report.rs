//! Errors as one line for logs: the error and every source under it.

use std::error::Error;

/// `error: source: source of the source…`, on one line.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    for inner in sources(error) {
        text.push_str(": ");
        text.push_str(&inner.to_string());
    }
    text
}

/// The innermost cause of `error` (the error itself when it has no source).
pub fn root_cause<'a>(error: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause
}

fn sources<'a>(error: &'a dyn Error) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(error.source(), |e: &&'a (dyn Error + 'static)| {
        (*e).source()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);
    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn a_chain_names_every_source_and_the_root_is_the_innermost() {
        let error = Outer(Middle(std::io::Error::other("inner")));
        assert_eq!(error_chain(&error), "outer: middle: inner");
        assert_eq!(root_cause(&error).to_string(), "inner");
        let alone = std::io::Error::other("alone");
        assert_eq!(error_chain(&alone), "alone");
        assert_eq!(root_cause(&alone).to_string(), "alone");
    }
}
