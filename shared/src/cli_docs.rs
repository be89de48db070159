//! What each binary's command line tells about itself: shell completions
//! (`completions SHELL`), man pages (`man-pages --out DIR`, for the packages), and the check
//! that every visible command shows an example and every argument a description.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub use clap_complete::Shell;

/// Writes `cmd`'s completion script for `shell` (built whole first: clap_complete panics on a
/// failed write, such as a closed pipe).
pub fn completions(
    mut cmd: clap::Command,
    shell: Shell,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes a man page (section 1) for `cmd` and one for each of its subcommands
/// (`conflux-balancer-servers-add.1`), into `dir`.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd, dir)
}

/// The `completions SHELL` command of a binary: the script on stdout (a closed pipe, as in
/// `| head`, is not worth an error).
pub fn print_completions(cmd: clap::Command, shell: Shell) -> ExitCode {
    let _ = completions(cmd, shell, &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// The hidden `man-pages --out DIR` command of a binary (the packages run it).
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> ExitCode {
    match man_pages(cmd, dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot write the man pages into {}: {e}",
                dir.display()
            );
            ExitCode::from(1)
        }
    }
}

/// Where `cmd` falls short: each visible command without an `Example` in its long help's
/// closing text, each visible argument without a description (empty when none does).
pub fn undocumented(cmd: &clap::Command) -> Vec<String> {
    let mut missing = Vec::new();
    walk(cmd, cmd.get_name(), &mut missing);
    missing
}

fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    let example = cmd
        .get_after_help()
        .or(cmd.get_after_long_help())
        .is_some_and(|text| text.to_string().contains("Example"));
    if !example {
        missing.push(format!("{path}: no example"));
    }
    for arg in cmd.get_arguments() {
        let builtin = ["help", "version"].contains(&arg.get_id().as_str());
        if !arg.is_hide_set() && !builtin && arg.get_help().is_none() {
            missing.push(format!("{path} {}: no description", arg.get_id()));
        }
    }
    for sub in cmd.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
}
