//! A digest of this crate's sources, for the context record keys are computed under
//! (`src/context.rs`): the code that reads and maps a record is part of what a record's key
//! stands for, so any change to it gives new keys (and one cycle that parses every record
//! again) without a version to bump by hand.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=src");
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let name = file.to_string_lossy().replace('\\', "/");
        let text = std::fs::read(file)?;
        for part in [name.as_bytes(), &text] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    let mut hex = String::new();
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    println!("cargo::rustc-env=SCIMSYNC_DIRECTORY_SOURCES={hex}");
    Ok(())
}

/// Every file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sources(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
