//! `scimsync completions SHELL` and `scimsync man`: generated from the clap definition, so they
//! never drift from the real flags.

use crate::args::Cli;
use crate::exit;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "scimsync", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man(out_dir: Option<&Path>) -> Result<i32> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut buf = Vec::new();
    page.render(&mut buf)
        .context("cannot render the man page")?;
    match out_dir {
        Some(dir) => {
            let path = dir.join("scimsync.1");
            std::fs::write(&path, &buf)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&buf)
                .context("cannot write the man page")?;
        }
    }
    Ok(exit::OK)
}
