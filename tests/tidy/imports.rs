//! No import circle between the modules of a crate. A crate's top-level modules (each with its
//! submodules) are the nodes; a `crate::m` path (or a name the crate root re-exports from `m`)
//! in one module's code is an edge to `m`, a path to an item the root itself defines is an edge
//! to the root, and the root's code naming a module is an edge from the root (its `mod`
//! declarations and `pub use` re-exports are the crate's outline, not imports). Test code
//! (`#[cfg(test)]` modules, `src/tests/`) is left out: a test may reach anything. A circle
//! found is printed, module by module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates with a circle this test found when it was written, in other hands: printed, not
/// refused. Every other crate (the cli and the engine among them) must have none.
const KNOWN: &[(&str, &str)] = &[
    // The JSON reader's circle is issue 20 part B's.
    ("directory", "config -> expr -> mapping -> config"),
    ("executor", "execute -> groups -> execute"),
    // Its router (lib.rs) names the handlers; the handlers take the `Emulator` lib.rs defines.
    ("emulator", "(root) -> admin -> (root)"),
];

const ROOT: &str = "(root)";

/// A crate's module graph: top-level module → the top-level modules its code names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let root_file = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|p| p.exists())
        .unwrap();
    let files = rust_files(src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| top_module(src, f))
        .filter(|m| m != ROOT)
        .collect();
    // Names the root re-exports (`pub use m::{A, B}`), by the module they come from.
    let root_text = code(&std::fs::read_to_string(&root_file).unwrap());
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for line in root_text.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let module = module
            .trim_start_matches("crate::")
            .trim_start_matches("self::");
        if !modules.contains(module) {
            continue;
        }
        for name in names
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .map(|n| n.trim().rsplit("::").next().unwrap_or("").trim())
        {
            if !name.is_empty() {
                reexports.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_module(src, file) else {
            continue;
        };
        let text = code(&std::fs::read_to_string(file).unwrap());
        let mut to = BTreeSet::new();
        for path in crate_paths(&text) {
            let first = path.split("::").next().unwrap_or("");
            if let Some(m) = modules.get(first) {
                to.insert(m.clone());
            } else if let Some(m) = reexports.get(first) {
                to.insert(m.clone());
            } else if !first.is_empty() {
                to.insert(ROOT.to_owned());
            }
        }
        // `super::` in a top-level module's own file is the root.
        let depth = file.strip_prefix(src).unwrap().components().count();
        let own_file = depth == 1 || file.ends_with("mod.rs") && depth == 2;
        if own_file && from != ROOT && text.contains("super::") {
            to.insert(ROOT.to_owned());
        }
        // The root names its modules by their bare names (`use args::Cli`, `commands::run`);
        // its outline (declarations, re-exports) is no import.
        if from == ROOT {
            let uses: String = text
                .lines()
                .filter(|l| {
                    let l = l.trim();
                    !(l.starts_with("pub use ")
                        || l.starts_with("mod ")
                        || l.starts_with("pub mod "))
                })
                .collect::<Vec<_>>()
                .join("\n");
            for m in &modules {
                if mentions(&uses, m) {
                    to.insert(m.clone());
                }
            }
            to.retain(|m| m != ROOT);
        }
        to.remove(&from);
        graph.entry(from).or_default().extend(to);
    }
    graph
}

/// The `.rs` files under `src`, test code left out.
fn rust_files(src: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "tests" {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level module a file belongs to (`(root)` for lib.rs/main.rs; none for `src/bin/`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    if first == "bin" {
        return None;
    }
    if rel.components().count() == 1 {
        let stem = first.trim_end_matches(".rs");
        return Some(if stem == "lib" || stem == "main" {
            ROOT.to_owned()
        } else {
            stem.to_owned()
        });
    }
    Some(first)
}

/// The code of a file: comments and `#[cfg(test)]` modules removed.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_test = false;
    for line in text.lines() {
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let trimmed = line.trim();
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if let Some(d) = skip_depth {
            depth = (depth + opens).saturating_sub(closes);
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        if pending_test && trimmed.starts_with("#[") {
            continue;
        }
        if pending_test && (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ")) {
            pending_test = false;
            let after = (depth + opens).saturating_sub(closes);
            if after > depth {
                skip_depth = Some(depth);
            }
            depth = after;
            continue;
        }
        pending_test = false;
        depth = (depth + opens).saturating_sub(closes);
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The paths after each `crate::`, braces expanded one level (`crate::{a::B, c}` gives `a::B`
/// and `c`).
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        // `scimsync_engine::…` ends in "engine::", not "crate::"; `$crate::` is a macro's.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            paths.extend(group[..end].split(',').map(|p| p.trim().to_owned()));
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            paths.push(rest[..end].to_owned());
        }
    }
    paths
}

/// Whether `text` names module `m` as a path's first segment (`m::`), or declares it.
fn mentions(text: &str, m: &str) -> bool {
    text.match_indices(&format!("{m}::")).any(|(at, _)| {
        let before = text[..at].chars().last();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

/// A circle of the graph, if there is one (modules in order, the first repeated last).
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

/// Every module reachable from `node`, and `node`'s own.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, node: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![node.to_owned()];
    while let Some(n) = todo.pop() {
        for next in graph.get(&n).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// The modules tangled with `node`: each reaches it and is reached from it.
fn tangle(graph: &BTreeMap<String, BTreeSet<String>>, node: &str) -> Vec<String> {
    reachable(graph, node)
        .into_iter()
        .filter(|m| reachable(graph, m).contains(node))
        .collect()
}

#[test]
fn no_crate_has_an_import_circle() {
    // SCIMSYNC_TIDY_CRATES reads another tree's crates (an old commit's, to compare).
    let crates = std::env::var_os("SCIMSYNC_TIDY_CRATES")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::root().join("crates"));
    let mut refused = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| crates.join(name).join("src").is_dir())
        .collect();
    names.sort();
    for name in &names {
        let graph = graph(&crates.join(name).join("src"));
        let edges: usize = graph.values().map(BTreeSet::len).sum();
        match circle(&graph) {
            Some(found) if KNOWN.iter().any(|(known, _)| known == name) => eprintln!(
                "crates/{name}: a known import circle, not refused here: {}",
                found.join(" -> ")
            ),
            Some(found) => {
                let tangled = tangle(&graph, &found[0]);
                refused.push(format!(
                    "crates/{name}: {} ({} modules tangled: {})",
                    found.join(" -> "),
                    tangled.len(),
                    tangled.join(", ")
                ));
            }
            None => eprintln!(
                "crates/{name}: {} modules, {edges} edges, no circle",
                graph.len()
            ),
        }
        if std::env::var_os("SCIMSYNC_TIDY_GRAPH").is_some() {
            for (from, to) in &graph {
                eprintln!(
                    "  {from} -> {}",
                    to.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    assert!(
        refused.is_empty(),
        "import circles:\n{}",
        refused.join("\n")
    );
    assert!(names.len() >= 10, "{names:?}");
}

#[test]
fn the_reading_finds_a_circle_when_there_is_one() {
    let dir = std::env::temp_dir().join(format!("scimsync-tidy-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\nmod b;\nmod c;\npub use c::Thing;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::b::X;\n#[cfg(test)]\nmod tests {\n    use crate::c::Y;\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod inner;\n").unwrap();
    // A submodule's path counts for its top-level module; a root re-export for its origin.
    std::fs::write(src.join("b/inner.rs"), "fn f() { crate::Thing::new(); }\n").unwrap();
    std::fs::write(
        src.join("c.rs"),
        "// crate::a is only a comment\npub struct Thing;\n",
    )
    .unwrap();
    let g = graph(&src);
    assert_eq!(circle(&g), None, "{g:?}");
    std::fs::write(
        src.join("c.rs"),
        "pub struct Thing;\nfn g() { let _ = crate::{b, a::Z}; }\n",
    )
    .unwrap();
    let g = graph(&src);
    let found = circle(&g).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    let members: BTreeSet<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(
        members,
        BTreeSet::from(["a", "b", "c"]),
        "{found:?} in {g:?}"
    );
    assert_eq!(found.first(), found.last());
}
