//! The workspace's tidy test: what keeps the code and its docs in step, checked on every run.
//! - `deps`: the dependency rules of ARCHITECTURE.md, for every crate (`cargo metadata`);
//! - `imports`: no import circle between the modules of a crate (a reading of its
//!   `crate::`/`super::` paths);
//! - `docs`: no dangling reference to a file of the repository in its docs and comments;
//! - `files`: no runtime file (a state database, its lock, a profile) committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deps;
mod docs;
mod files;
mod imports;

use std::path::{Path, PathBuf};

/// The repository's root (this package is `tests/` in it).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The repository's files, as git tracks them (relative paths), or, outside a git checkout,
/// every file under the root but `target/` and dot-directories.
pub fn tracked_files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        return out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .filter(|p| root().join(p).exists())
            .collect();
    }
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root().join(&dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || (dir.as_os_str().is_empty() && name == "target") {
                continue;
            }
            let path = dir.join(&*name);
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
