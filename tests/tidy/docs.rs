//! No dangling reference in the repository's docs and comments: every file of the repository
//! they name (`crates/…`, `docs/…`, `scripts/…`, `tests/…`, `examples/…`, any `*.md`) exists.
//! A path is tried from the root, from the naming file's crate and from its directory.

use std::path::{Path, PathBuf};

/// Documents that live beside the repository, not in it: the team's research notes on Miro's
/// SCIM API (`../shared/miro-scim.md`, which CI checks out next to the repository).
const OUTSIDE: &[&str] = &["miro-scim.md"];

const ANCHORS: &[&str] = &[
    "crates/",
    "docs/",
    "scripts/",
    "tests/",
    "examples/",
    ".ci/",
];

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// The repository paths `text` names.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in text.split(|c: char| !is_path_char(c)) {
        // Sentence punctuation, and `…/` of a directory.
        let word = word.trim_end_matches(['.', ',']);
        if word.is_empty() || word.contains("//") {
            continue;
        }
        let anchored = ANCHORS.iter().any(|a| word.starts_with(a));
        let markdown = word.len() > ".md".len() && word.ends_with(".md");
        if anchored || markdown {
            found.push(word.to_owned());
        }
    }
    found
}

/// `text` without its URLs (a `docs/` in one is the site's, not ours).
fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '`'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn resolves(reference: &str, file: &Path) -> bool {
    let root = super::root();
    let reference = reference.trim_end_matches('/');
    if OUTSIDE.iter().any(|o| reference.ends_with(o)) {
        return true;
    }
    let dir = file.parent().unwrap_or(Path::new(""));
    let crate_dir: Option<PathBuf> = {
        let mut parts = file.components();
        match (parts.next(), parts.next()) {
            (Some(a), Some(b)) if a.as_os_str() == "crates" => Some(Path::new("crates").join(b)),
            _ => None,
        }
    };
    let mut candidates = vec![root.join(reference), root.join(dir).join(reference)];
    if let Some(c) = crate_dir {
        candidates.push(root.join(c).join(reference));
    }
    // A bare document name: the root's, or docs/'s.
    if !reference.contains('/') {
        candidates.push(root.join("docs").join(reference));
    }
    candidates.iter().any(|c| c.exists())
}

#[test]
fn every_file_the_docs_name_exists() {
    let mut dangling = Vec::new();
    let mut checked = 0;
    for file in super::tracked_files() {
        let ext = file.extension().map(|e| e.to_string_lossy().into_owned());
        if !matches!(ext.as_deref(), Some("rs" | "md" | "toml" | "sh"))
            && !file.ends_with(".ci/run")
        {
            continue;
        }
        // This file's examples name files on purpose, existing or not.
        if file == Path::new("tests/tidy/docs.rs") {
            continue;
        }
        let text = std::fs::read_to_string(super::root().join(&file)).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            for reference in references(&without_urls(line)) {
                checked += 1;
                if !resolves(&reference, &file) {
                    dangling.push(format!("{}:{}: {reference}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} references found: is the reading broken?"
    );
    assert!(
        dangling.is_empty(),
        "dangling references:\n{}",
        dangling.join("\n")
    );
}

#[test]
fn references_are_read_as_paths() {
    assert_eq!(
        references("see crates/plan/tests/data/<case>/ and BENCHMARKS.md, not `*.md`."),
        ["crates/plan/tests/data/", "BENCHMARKS.md"]
    );
    assert_eq!(
        references(&without_urls(
            "https://developers.miro.com/docs/scim (S3), docs/sync-toml.md"
        )),
        ["docs/sync-toml.md"]
    );
    assert!(!resolves("SPEC.md", Path::new("crates/model/src/event.rs")));
    assert!(resolves(
        "tests/keyed.rs",
        Path::new("crates/directory/src/lib.rs")
    ));
}
