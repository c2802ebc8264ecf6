//! The web console at `/console/`: static files embedded at build time
//! (`api/console/`, plain HTML, CSS and ES modules: no front-end
//! toolchain, nothing to build). The page signs in with an API key it keeps
//! in memory only and calls the public `/v1` API with it, so it can do
//! nothing the key could not; its Content Security Policy allows scripts,
//! styles and connections to this origin only.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::{ApiError, ErrorCode};

/// The console's policy: its own files and its own origin, nothing inline,
/// nothing framed, no forms posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Name, media type and content of each file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/console.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/ui.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/views.js"),
    ),
    (
        "proofs.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/proofs.js"),
    ),
];

/// `/console`: to the directory, so relative asset paths resolve.
pub async fn root() -> Redirect {
    Redirect::permanent("/console/")
}

/// `/console/`: the page.
pub async fn index() -> Response {
    file("index.html")
}

/// `/console/{name}`: one of the embedded files, 404 for anything else.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    let Some((_, media_type, content)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(ErrorCode::NotFound, "no such console file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        *content,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file the page loads is embedded, and nothing in them would
    /// need the policy loosened (inline handlers, inline styles, eval).
    #[test]
    fn the_page_loads_only_embedded_files_and_needs_nothing_inline() {
        let names: Vec<&str> = FILES.iter().map(|(n, _, _)| *n).collect();
        for (name, _, content) in FILES {
            for needle in [" onclick=", " onload=", " style=", "eval(", "new Function"] {
                assert!(!content.contains(needle), "{name} has {needle:?}");
            }
            for import in content
                .split(['"', '\''])
                .filter(|s| s.starts_with("./") || s.ends_with(".js") || s.ends_with(".css"))
            {
                let file = import.trim_start_matches("./");
                if file.ends_with(".js") || file.ends_with(".css") {
                    assert!(names.contains(&file), "{name} loads {import}, not embedded");
                }
            }
        }
        let page = FILES[0].2;
        assert!(page.contains("<script type=\"module\" src=\"console.js\"></script>"));
        assert!(!page.contains("<script>"), "no inline script");
    }
}
