//! The command line, defined once: the global options and the list of
//! commands here, each command's arguments in its own file
//! (`commands::<name>::Args`). Help text, the man pages and the shell
//! completions come from these structs (src/docgen.rs).
//!
//! argh reads global options only before the command name; maqet moves
//! those given after it there first ([`hoist_globals`]), so `maqet ls
//! --json` works like `maqet --json ls`.

use std::ffi::OsString;

use argh::{ArgsInfo, FromArgs};
use camino::Utf8PathBuf;

pub use crate::commands::qmp::{Args as QmpArgs, Verb as QmpVerb};
pub use crate::commands::snapshot::{Args as SnapshotArgs, Verb as SnapshotAction};

/// Manage local QEMU virtual machines: one binary, no daemon.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    note = "Global options go before or after the command: `maqet --json ls` or `maqet ls --json`.\n\
            A VM may be named by its name, its id, or a unique id prefix of 4 or more characters.\n\
            Files live in --data-dir (default $XDG_DATA_HOME/maqet, else ~/.local/share/maqet) and\n\
            --runtime-dir (default $XDG_STATE_HOME/maqet/run, else ~/.local/state/maqet/run);\n\
            MAQET_DATA_DIR and MAQET_RUNTIME_DIR set them too.",
    example = "maqet add vm.ron\nmaqet ls\nmaqet --json info web",
    error_code(1, "the operation failed"),
    error_code(2, "usage error"),
    error_code(3, "not found, or invalid configuration"),
    error_code(4, "refused for safety or permission"),
    error_code(5, "timed out (the store stayed busy)"),
    error_code(130, "interrupted")
)]
pub struct Cli {
    /// print more on stderr: -v warnings, -vv info, -vvv debug
    #[argh(switch, short = 'v')]
    pub verbose: u8,

    /// append a debug log to this file
    #[argh(option, arg_name = "PATH")]
    pub log_file: Option<Utf8PathBuf>,

    /// directory for the database and the disks maqet creates
    #[argh(option, arg_name = "DIR")]
    pub data_dir: Option<Utf8PathBuf>,

    /// directory for VM sockets, pidfiles and logs
    #[argh(option, arg_name = "DIR")]
    pub runtime_dir: Option<Utf8PathBuf>,

    /// read settings from DIR/maqet.ron
    #[argh(option, arg_name = "DIR")]
    pub config_dir: Option<Utf8PathBuf>,

    /// print results as JSON
    #[argh(switch)]
    pub json: bool,

    /// print the version and exit
    #[argh(switch)]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand)]
pub enum Command {
    Add(crate::commands::add::Args),
    Apply(crate::commands::apply::Args),
    Ls(crate::commands::ls::Args),
    Info(crate::commands::info::Args),
    Rm(crate::commands::rm::Args),
    Start(crate::commands::start::Args),
    Stop(crate::commands::stop::Args),
    Status(crate::commands::status::Args),
    Inspect(crate::commands::status::InspectArgs),
    Qmp(QmpArgs),
    Console(crate::commands::console::Args),
    Run(crate::commands::run::Args),
    Snapshot(SnapshotArgs),
    Disk(crate::commands::disk::Args),
    Storage(crate::commands::storage::Args),
    Doctor(crate::commands::doctor::Args),
    Cleanup(crate::commands::doctor::CleanupArgs),
    Export(crate::commands::export::Args),
    Ssh(crate::commands::ssh::Args),
    Completions(crate::commands::completions::Args),
    Man(crate::commands::man::Args),
}

/// The names `qmp` takes as verbs; anything else after `qmp` is a VM.
pub const QMP_VERBS: [&str; 10] = [
    "command",
    "keys",
    "type",
    "screendump",
    "pause",
    "resume",
    "device-add",
    "disk-add",
    "device-del",
    "events",
];

/// The verbs `snapshot` takes; `snapshot VM VERB ...` is rewritten to them.
pub const SNAPSHOT_VERBS: [&str; 4] = ["create", "load", "list", "delete"];

/// How parsing ended when it did not produce a [`Cli`].
pub enum ParseExit {
    /// `--help`: print to stdout, exit 0.
    Help(String),
    /// Bad usage: print to stderr, exit 2.
    Usage(String),
}

/// Parse the process arguments (without the program name).
pub fn parse(args: Vec<OsString>) -> Result<Cli, ParseExit> {
    let mut strings = Vec::with_capacity(args.len());
    for arg in args {
        match arg.into_string() {
            Ok(s) => strings.push(s),
            Err(bad) => {
                return Err(ParseExit::Usage(format!(
                    "argument `{}` is not valid UTF-8; maqet takes UTF-8 names and paths",
                    bad.to_string_lossy()
                )));
            }
        }
    }
    hoist_globals(&mut strings);
    expand_shorthands(&mut strings).map_err(ParseExit::Usage)?;
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    Cli::from_args(&["maqet"], &refs).map_err(|exit| match exit.status {
        Ok(()) => ParseExit::Help(exit.output),
        Err(()) => ParseExit::Usage(missing_verb(&exit.output).unwrap_or(exit.output)),
    })
}

/// argh's "One of the following subcommands must be present" lists `help`
/// among the verbs; say it in maqet's words, with the verbs only.
fn missing_verb(output: &str) -> Option<String> {
    let list = output.strip_prefix("One of the following subcommands must be present:")?;
    let verbs: Vec<&str> = list
        .split_whitespace()
        .filter(|verb| *verb != "help")
        .collect();
    Some(format!(
        "a verb is missing: give one of {}",
        verbs.join(", ")
    ))
}

/// Global options maqet takes before the command.
const GLOBAL_SWITCHES: [&str; 2] = ["--json", "--verbose"];
const GLOBAL_WITH_VALUE: [&str; 4] = ["--log-file", "--data-dir", "--runtime-dir", "--config-dir"];

/// Whether `long` is one of maqet's global options, which also work after
/// the command. A unit test keeps this list equal to `Cli`'s own options.
pub fn is_global(long: &str) -> bool {
    GLOBAL_SWITCHES.contains(&long) || GLOBAL_WITH_VALUE.contains(&long)
}

fn is_verbose(word: &str) -> bool {
    word.len() >= 2 && word.starts_with("-v") && word[1..].bytes().all(|b| b == b'v')
}

/// Global options are defined once, on `maqet` itself; people also put
/// them after the command (`maqet ls --json`). Move those before the
/// command, in order, keeping each option's value with it; nothing after
/// `--` moves.
fn hoist_globals(args: &mut Vec<String>) {
    // Where the command is: the first word that is neither a global option
    // nor a global option's value.
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_str();
        if GLOBAL_WITH_VALUE.contains(&word) {
            i += 2;
        } else if word.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    let command = i;
    let mut hoisted = Vec::new();
    let mut j = command + 1;
    while j < args.len() {
        let word = args[j].as_str();
        if word == "--" {
            break;
        }
        if GLOBAL_SWITCHES.contains(&word) || is_verbose(word) {
            hoisted.push(args.remove(j));
        } else if GLOBAL_WITH_VALUE.contains(&word) && j + 1 < args.len() {
            hoisted.push(args.remove(j));
            hoisted.push(args.remove(j));
        } else {
            j += 1;
        }
    }
    let at = command.min(args.len());
    args.splice(at..at, hoisted);
}

/// `maqet qmp VM COMMAND` means `maqet qmp command VM COMMAND`, and
/// `maqet snapshot VM VERB` means `maqet snapshot VERB VM`. A word after
/// `snapshot` that is neither gets its own message, not argh's
/// "Unrecognized argument".
fn expand_shorthands(args: &mut Vec<String>) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let word = args[i].clone();
        let word = word.as_str();
        if GLOBAL_WITH_VALUE.contains(&word) {
            i += 2;
            continue;
        }
        // argh takes `-v -v -v` but not `-vvv`; people type the latter.
        if word.len() > 2 && word.starts_with("-v") && word[1..].bytes().all(|b| b == b'v') {
            let count = word.len() - 1;
            args.splice(i..=i, std::iter::repeat_n("-v".to_owned(), count));
            i += count;
            continue;
        }
        if word.starts_with('-') {
            i += 1;
            continue;
        }
        if word == "qmp"
            && let Some(next) = args.get(i + 1)
            && !next.starts_with('-')
            && next != "help"
            && !QMP_VERBS.contains(&next.as_str())
        {
            args.insert(i + 1, "command".into());
        }
        // `snapshot VM VERB ...` → `snapshot VERB VM ...`
        if word == "snapshot"
            && let (Some(first), Some(second)) = (args.get(i + 1), args.get(i + 2))
            && !SNAPSHOT_VERBS.contains(&first.as_str())
            && SNAPSHOT_VERBS.contains(&second.as_str())
        {
            args.swap(i + 1, i + 2);
        } else if word == "snapshot"
            && let Some(first) = args.get(i + 1)
            && !first.starts_with('-')
            && first != "help"
            && !SNAPSHOT_VERBS.contains(&first.as_str())
        {
            let verbs = SNAPSHOT_VERBS.join(", ");
            return Err(match args.get(i + 2) {
                Some(second) if !second.starts_with('-') => format!(
                    "`snapshot {first} {second}`: neither `{first}` nor `{second}` is a snapshot verb ({verbs})"
                ),
                _ => format!(
                    "`snapshot {first}` needs a verb: one of {verbs}, as in `maqet snapshot list {first} DRIVE`"
                ),
            });
        }
        return Ok(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use argh::{ArgsInfo, FlagInfoKind};

    use super::*;

    #[test]
    fn the_global_lists_are_maqets_own_options() {
        let info = Cli::get_args_info();
        for flag in info.flags {
            let listed = match flag.kind {
                FlagInfoKind::Switch => GLOBAL_SWITCHES.contains(&flag.long),
                FlagInfoKind::Option { .. } => GLOBAL_WITH_VALUE.contains(&flag.long),
            };
            let exempt = matches!(flag.long, "--help" | "--version");
            assert_eq!(listed, !exempt, "{} and the global lists", flag.long);
        }
        let count = GLOBAL_SWITCHES.len() + GLOBAL_WITH_VALUE.len();
        assert_eq!(count + 2, info.flags.len());
    }

    #[test]
    fn the_verb_lists_are_the_subcommands() {
        let info = Cli::get_args_info();
        let verbs = |name: &str| -> Vec<&str> {
            let command = info.commands.iter().find(|c| c.name == name).unwrap();
            command.command.commands.iter().map(|c| c.name).collect()
        };
        assert_eq!(verbs("qmp"), QMP_VERBS);
        assert_eq!(verbs("snapshot"), SNAPSHOT_VERBS);
    }
}
