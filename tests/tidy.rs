//! Repository rules, checked as tests (after rust-analyzer's
//! `xtask/src/tidy.rs`): the architecture invariants that a compiler does
//! not enforce, and the documents that must stay in step with the code.

use std::fs;
use std::path::{Path, PathBuf};

use proofline_domain::api_key::ApiKey;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifest(path: &str) -> toml::Table {
    read(path).parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `.rs` file under `dir`, `target` excluded.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// The features a dependency entry of `domain/Cargo.toml` turns on,
/// following `workspace = true` to the root manifest.
fn features(entry: &toml::Value, name: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let list = |v: &toml::Value| -> Vec<String> {
        v.get("features")
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    found.extend(list(entry));
    if entry.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
        let root = manifest("Cargo.toml");
        let workspace_entry = &root["workspace"]["dependencies"][name];
        found.extend(list(workspace_entry));
        let defaults_off = workspace_entry
            .get("default-features")
            .and_then(|d| d.as_bool())
            == Some(false);
        if !defaults_off {
            found.push("default".into());
        }
    }
    found
}

#[test]
fn domain_has_no_io_dependencies() {
    let domain = manifest("domain/Cargo.toml");
    let forbidden = [
        "tokio",
        "sqlx",
        "async-nats",
        "axum",
        "hyper",
        "reqwest",
        "tower",
        "tower-http",
        "async-trait",
        "futures",
        "getrandom",
        "rand",
        "tempfile",
        "tracing-subscriber",
        "mio",
        "proofline-commands",
        "proofline-projections",
        "proofline-api",
    ];
    for section in ["dependencies", "build-dependencies"] {
        let Some(deps) = domain.get(section).and_then(|d| d.as_table()) else {
            continue;
        };
        for (name, entry) in deps {
            assert!(
                !forbidden.contains(&name.as_str()),
                "domain may not depend on {name}"
            );
            let features = features(entry, name);
            match name.as_str() {
                // The clock is what `domain` must never read.
                "chrono" => assert!(
                    !features
                        .iter()
                        .any(|f| f == "clock" || f == "now" || f == "default"),
                    "domain's chrono must not have the clock: {features:?}"
                ),
                // v4 needs randomness and v7 the clock.
                "uuid" => assert!(
                    !features
                        .iter()
                        .any(|f| matches!(f.as_str(), "v1" | "v4" | "v6" | "v7" | "fast-rng")),
                    "domain's uuid must not generate ids: {features:?}"
                ),
                _ => {}
            }
        }
    }
}

#[test]
fn domain_sources_do_no_io_read_no_clock_and_draw_no_randomness() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "std::thread",
        "std::io::stdin",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "now_v7",
        "new_v4",
        "getrandom",
        "tokio",
        "async fn",
        ".await",
    ];
    for file in rust_files(&root().join("domain")) {
        let text = fs::read_to_string(&file).unwrap();
        for word in forbidden {
            assert!(!text.contains(word), "{} uses {word}", file.display());
        }
    }
}

#[test]
fn every_crate_opens_with_a_doc_and_a_layout() {
    for lib in [
        "src/lib.rs",
        "domain/src/lib.rs",
        "commands/src/lib.rs",
        "projections/src/lib.rs",
        "api/src/lib.rs",
        "testkit/src/lib.rs",
    ] {
        let text = read(lib);
        assert!(text.starts_with("//!"), "{lib} opens with a //! doc");
        assert!(
            text.contains("# Layout"),
            "{lib} lists its modules under # Layout"
        );
    }
}

#[test]
fn every_member_uses_the_workspace_lints() {
    let root = manifest("Cargo.toml");
    assert_eq!(
        root["workspace"]["lints"]["rust"]["unsafe_code"].as_str(),
        Some("forbid"),
        "[workspace.lints] forbids unsafe code"
    );
    let members = root["workspace"]["members"].as_array().unwrap();
    let mut manifests: Vec<String> = members
        .iter()
        .map(|m| format!("{}/Cargo.toml", m.as_str().unwrap()))
        .collect();
    manifests.push("Cargo.toml".into());
    for path in manifests {
        let m = manifest(&path);
        assert_eq!(
            m.get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(|w| w.as_bool()),
            Some(true),
            "{path} has [lints] workspace = true"
        );
    }
}

#[test]
fn no_test_is_ignored_and_none_expects_a_panic() {
    // Spelled in pieces so this file does not match itself.
    let ignored = ["#[", "ignore"].concat();
    let expects_panic = ["should", "_panic"].concat();
    for file in rust_files(&root()) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&ignored),
            "{} has an ignored test",
            file.display()
        );
        assert!(
            !text.contains(&expects_panic),
            "{} expects a panic",
            file.display()
        );
    }
}

#[test]
fn env_sample_lists_every_variable_without_a_secret() {
    let sample = read(".env.sample");
    let readme = read("README.md");
    for (name, _) in proofline::config::VARIABLES {
        assert!(
            sample.contains(&format!("{name}=")),
            ".env.sample lists {name}"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "README's table lists {name}"
        );
    }
    // The defaults they state are the code's own.
    for (name, default) in proofline::config::Config::defaults() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("README's table has a row for {name}"));
        let stated = row
            .split('|')
            .nth(2)
            .unwrap_or_default()
            .trim()
            .replace('`', "");
        assert_eq!(stated, default, "README's default of {name}");
        let concrete =
            !default.contains('<') && !default.starts_with('(') && !default.starts_with("none");
        if concrete {
            assert!(
                sample.contains(&format!("# {name}={default}\n")),
                ".env.sample shows {name}={default}"
            );
        }
    }
    let set: Vec<&str> = sample
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(
        set.is_empty(),
        ".env.sample sets values; it should only document: {set:?}"
    );
    // No password in any example URL, no API key.
    for text in [&sample, &readme, &read("deploy/docker-compose.yml")] {
        for word in text.split_whitespace() {
            let has_password = word.contains("://")
                && word.split("://").nth(1).is_some_and(|rest| {
                    rest.split('@')
                        .next()
                        .is_some_and(|user| user.contains(':') && !user.contains('$'))
                        && rest.contains('@')
                });
            assert!(!has_password, "a URL with a literal password: {word}");
            let bare =
                word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-');
            assert!(
                ApiKey::parse(bare).is_err(),
                "an API key in the docs: {word}"
            );
        }
    }
}

#[test]
fn readme_opens_with_the_two_commands() {
    let readme = read("README.md");
    let first_block = readme.split("```").nth(1).expect("a code block");
    assert!(first_block.contains("cargo run --release"), "{first_block}");
    assert!(first_block.contains("cargo test"), "{first_block}");
    let before = readme.split("```").next().unwrap();
    assert!(
        before.lines().filter(|l| !l.trim().is_empty()).count() <= 1,
        "the commands come first"
    );
}

#[test]
fn architecture_maps_every_top_level_folder() {
    let architecture = read("ARCHITECTURE.md");
    for folder in [
        "domain/",
        "commands/",
        "projections/",
        "api/",
        "migrations/",
        "deploy/",
        "testkit/",
    ] {
        assert!(
            architecture.contains(&format!("### `{folder}`")),
            "ARCHITECTURE.md has a section for {folder}"
        );
        assert!(root().join(folder).is_dir(), "{folder} exists");
    }
}

/// The schema section of `docs/analysts.md`, as the types make it.
fn analyst_schemas() -> String {
    let mut out =
        String::from("<!-- schemas:start -->\n\n| subject | schema version |\n| --- | --- |\n");
    let all = proofline_commands::schemas::events();
    for event in &all {
        out.push_str(&format!(
            "| `proofline.events.{}.{}` | {} |\n",
            event.category, event.name, event.schema_version
        ));
    }
    for event in &all {
        let (category, name) = (event.category, &event.name);
        out.push_str(&format!(
            "\n### `{name}` (`proofline.events.{category}.{name}`)\n\n```json\n{}\n```\n",
            serde_json::to_string_pretty(&event.data).unwrap()
        ));
    }
    out.push_str("\n<!-- schemas:end -->");
    out
}

#[test]
fn the_analysts_schemas_are_those_of_the_types() {
    let path = root().join("docs/analysts.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find("<!-- schemas:start -->").expect("a start marker");
    let end =
        doc.find("<!-- schemas:end -->").expect("an end marker") + "<!-- schemas:end -->".len();
    let fresh = analyst_schemas();
    if doc[start..end] != fresh {
        if std::env::var_os("PROOFLINE_UPDATE_DOCS").is_some() {
            std::fs::write(&path, format!("{}{fresh}{}", &doc[..start], &doc[end..])).unwrap();
        } else {
            panic!(
                "docs/analysts.md's schemas are out of date: run PROOFLINE_UPDATE_DOCS=1 cargo test --test tidy"
            );
        }
    }
}

#[test]
fn the_analyst_may_not_read_any_consumer_of_the_service() {
    let config = read("deploy/nats/nats.conf");
    for model in proofline_projections::models::all() {
        let line = format!(
            "$JS.API.CONSUMER.MSG.NEXT.PROOFLINE_EVENTS.proofline-{}",
            model.name()
        );
        assert!(
            config.contains(&line),
            "deploy/nats/nats.conf denies {line}"
        );
    }
}

/// Lines of code of a source file: not blank, not a `//` comment, and not
/// in the inline `#[cfg(test)] mod tests` that ends a file.
fn lines_of_code(source: &str) -> usize {
    let lines: Vec<&str> = source.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].starts_with("mod tests"))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn no_source_file_is_over_600_lines_of_code() {
    assert_eq!(
        lines_of_code("fn a() {}\n\n// why\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\n"),
        1
    );
    let mut long = Vec::new();
    for path in rust_files(&root()) {
        let count = lines_of_code(&fs::read_to_string(&path).unwrap());
        if count > 600 {
            long.push(format!(
                "{} ({count})",
                path.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    assert!(
        long.is_empty(),
        "over 600 lines of code (split by concern, as ARCHITECTURE.md's map does): {long:?}"
    );
}
