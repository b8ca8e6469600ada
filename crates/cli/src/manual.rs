//! `scimsync completions SHELL` and `scimsync man`: generated from the clap definition, so they
//! never drift from the real flags.

use crate::args::Cli;
use crate::exit;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = Cli::command();
    // Into a buffer first: clap_complete panics on a failed write (`completions bash | head`),
    // a closed pipe here is an error `main` ends quietly on.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "scimsync", &mut script);
    use std::io::Write;
    std::io::stdout()
        .write_all(&script)
        .context("cannot write the completions")?;
    Ok(exit::OK)
}

/// The pages: `scimsync.1`, and `scimsync-<command>.1` for each subcommand (the root page's
/// SEE ALSO names them), each with every flag and its help text.
pub fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut root = Cli::command();
    root.build();
    let mut pages = Vec::new();
    let mut render = |name: String, cmd: clap::Command| -> Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .with_context(|| format!("cannot render the man page {name}"))?;
        pages.push((name, buf));
        Ok(())
    };
    render("scimsync.1".to_owned(), root.clone())?;
    // clap's own `help` subcommand is `--help`'s; it gets no page.
    for sub in root
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("scimsync-{}", sub.get_name());
        // The page's title is its file's name; the usage line keeps `scimsync <command>`.
        render(format!("{name}.1"), sub.clone().display_name(name))?;
    }
    Ok(pages)
}

/// `scimsync man`: every page into `out_dir`, or the main page to stdout.
pub fn man(out_dir: Option<&Path>) -> Result<i32> {
    let pages = pages()?;
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, page) in &pages {
                let path = dir.join(name);
                std::fs::write(&path, page)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            eprintln!("wrote {} man pages into {}", pages.len(), dir.display());
        }
        None => {
            use std::io::Write;
            let (_, root) = pages.first().context("no man page rendered")?;
            std::io::stdout()
                .write_all(root)
                .context("cannot write the man page")?;
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every flag and argument of every command says what it does: `--help`, the man pages and
    /// the completions all show it.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "scimsync", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn a_page_for_each_command_named_by_the_main_page() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for command in [
            "plan",
            "sync",
            "daemon",
            "events",
            "status",
            "check",
            "approve-deletes",
        ] {
            let page = format!("scimsync-{command}.1");
            assert!(names.contains(&page.as_str()), "{page} in {names:?}");
        }
        let root = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(root.contains("scimsync\\-plan(1)"), "{root}");
        let plan = String::from_utf8(
            pages
                .iter()
                .find(|(n, _)| n == "scimsync-plan.1")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(plan.contains("full\\-list"), "{plan}");
    }
}
