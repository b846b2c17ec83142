//! Shell completions and man pages, generated from the one definition of the
//! command line in [`crate::cli`] (argh's `ArgsInfo`): a new option or
//! command shows up in `--help`, the completions and the man pages at once.
//!
//! The output is committed under `completions/` (`maqet.bash`, `_maqet`,
//! `maqet.fish`) and `man/`; `scripts/gen-docs` rewrites it and a test fails
//! when it is stale. The binary prints the same text (`maqet completions
//! SHELL`, `maqet man [COMMAND]`), so a copied binary can install its own.
//!
//! Man layout, as git does it: `maqet.1` has the global options, the command
//! list, exit status, files and environment; every command has its own page,
//! `maqet-COMMAND.1`, and a command with verbs (`qmp`, `snapshot`, `disk`,
//! `storage`) documents all of them on its page.
//!
//! What argh cannot say, this module adds in one place each: which
//! arguments are VMs, files or directories ([`Value`]), and where
//! `cli::parse` lets a VM come before the verb ([`Shorthand`]).

mod bash;
mod fish;
mod man;
#[cfg(test)]
mod tests;
mod zsh;

use std::fmt;
use std::str::FromStr;

use argh::{ArgsInfo, CommandInfoWithArgs, ErrorCodeInfo, FlagInfo, FlagInfoKind, PositionalInfo};

use crate::cli::Cli;

/// A shell `maqet completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    pub fn as_str(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// The script's file name under `completions/`, as each shell looks
    /// for it (zsh wants `_maqet` in `$fpath`).
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "maqet.bash",
            Shell::Zsh => "_maqet",
            Shell::Fish => "maqet.fish",
        }
    }
}

impl FromStr for Shell {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shell::ALL
            .into_iter()
            .find(|shell| shell.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a shell maqet completes: use bash, zsh or fish"))
    }
}

impl fmt::Display for Shell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> String {
    let root = Node::root();
    match shell {
        Shell::Bash => bash::script(&root),
        Shell::Zsh => zsh::script(&root),
        Shell::Fish => fish::script(&root),
    }
}

/// The roff source of `maqet.1` (`None` or `"maqet"`) or of a command's
/// page: `"start"`, `"qmp"` (also `"maqet-qmp"`, or `"qmp keys"`, which is
/// on the `qmp` page). The error names the pages there are.
pub fn man(page: Option<&str>) -> Result<String, String> {
    man::page(&Node::root(), page)
}

/// Every man page as (file name, roff source): what `man/` holds.
pub fn man_pages() -> Vec<(String, String)> {
    man::pages(&Node::root())
}

/// One command of the tree (`maqet` itself, `start`, `qmp keys`), with
/// argh's text made ready to print.
struct Node {
    /// The words after `maqet`: empty for `maqet` itself.
    path: Vec<&'static str>,
    /// One line, as `--help` shows it in the command list.
    description: String,
    flags: Vec<&'static FlagInfo<'static>>,
    /// maqet's global options, which also work after a command (`maqet ls
    /// --json`): offered by the completions of every command but `maqet`
    /// itself, where they are among `flags`.
    globals: Vec<&'static FlagInfo<'static>>,
    positionals: Vec<&'static PositionalInfo<'static>>,
    /// One paragraph each.
    notes: Vec<String>,
    /// Each one or more command lines.
    examples: Vec<&'static str>,
    error_codes: &'static [ErrorCodeInfo<'static>],
    children: Vec<Node>,
}

impl Node {
    fn root() -> Node {
        let mut root = Node::new(Vec::new(), Cli::get_args_info());
        let globals: Vec<_> = root
            .flags
            .iter()
            .copied()
            .filter(|f| crate::cli::is_global(f.long))
            .collect();
        fn inherit(node: &mut Node, globals: &[&'static FlagInfo<'static>]) {
            for child in &mut node.children {
                child.globals = globals.to_vec();
                inherit(child, globals);
            }
        }
        inherit(&mut root, &globals);
        root
    }

    fn new(path: Vec<&'static str>, info: CommandInfoWithArgs) -> Node {
        let command_line = command_line(&path);
        let children = info
            .commands
            .into_iter()
            .map(|sub| {
                let mut child = path.clone();
                child.push(sub.name);
                Node::new(child, sub.command)
            })
            .collect();
        Node {
            description: one_line(info.description),
            flags: info.flags.iter().filter(|f| !f.hidden).collect(),
            globals: Vec::new(),
            positionals: info.positionals.iter().filter(|p| !p.hidden).collect(),
            notes: info
                .notes
                .iter()
                .map(|note| one_line(&argh_format(note, &command_line)))
                .collect(),
            examples: info.examples.to_vec(),
            error_codes: info.error_codes,
            children,
            path,
        }
    }

    /// `maqet qmp keys`.
    fn command_line(&self) -> String {
        command_line(&self.path)
    }

    /// `qmp keys`; empty for `maqet` itself.
    fn name(&self) -> String {
        self.path.join(" ")
    }

    /// The node and everything under it, parents first.
    fn walk(&self) -> Vec<&Node> {
        let mut out = vec![self];
        for child in &self.children {
            out.extend(child.walk());
        }
        out
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.path.last() == Some(&name))
    }

    /// Every flag a completion offers here: the command's own, then the
    /// global options.
    fn all_flags(&self) -> impl Iterator<Item = &'static FlagInfo<'static>> {
        self.flags.iter().chain(&self.globals).copied()
    }

    /// The flags that take a value, with its name (global options too).
    fn options(&self) -> impl Iterator<Item = (&'static FlagInfo<'static>, &'static str)> {
        self.all_flags().filter_map(|flag| match flag.kind {
            FlagInfoKind::Option { arg_name } => Some((flag, arg_name)),
            FlagInfoKind::Switch => None,
        })
    }

    /// The global options that say where the store is: passed on to
    /// `maqet ls --names` when completing VM names.
    fn store_options(&self) -> Vec<&'static str> {
        self.options()
            .filter(|(_, arg)| *arg == "DIR")
            .map(|(flag, _)| flag.long)
            .collect()
    }
}

fn command_line(path: &[&str]) -> String {
    std::iter::once("maqet")
        .chain(path.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

fn repeats(optionality: &argh::Optionality) -> bool {
    matches!(
        optionality,
        argh::Optionality::Repeating | argh::Optionality::Greedy
    )
}

/// argh formats notes like `format!`: `{command_name}` and doubled braces.
fn argh_format(text: &str, command_line: &str) -> String {
    text.replace("{command_name}", command_line)
        .replace("{{", "{")
        .replace("}}", "}")
}

/// Text wrapped for `--help` as one line: the generators wrap it again.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a value on the command line is, for completing it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// A VM's name, from `maqet ls --names`.
    Vm,
    /// Any file.
    File,
    /// A directory.
    Dir,
    /// One of these words.
    Words(Vec<String>),
    /// Anything; nothing to offer.
    Other,
}

impl Value {
    /// The value of the option or positional named `arg` (argh's
    /// `arg_name`) of the command at `path`.
    fn of(root: &Node, path: &[&str], arg: &str) -> Value {
        let words = |w: &[&str]| Value::Words(w.iter().map(|s| (*s).to_owned()).collect());
        match (path, arg) {
            (_, "VM") => Value::Vm,
            (_, "CONFIG" | "FILE" | "PATH") => Value::File,
            (_, "DIR") => Value::Dir,
            (_, "STATE") => Value::Words(
                crate::vm::Status::ALL
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
            ),
            (["completions"], _) | (_, "SHELL") => {
                Value::Words(Shell::ALL.iter().map(|s| s.as_str().to_owned()).collect())
            }
            (["man"], _) => Value::Words(man::page_names(root)),
            // crate::commands::qmp::ImageFormat; a test checks both parse.
            (["qmp", "screendump"], "FORMAT") => words(&["ppm", "png"]),
            // crate::config::ImageFormat; a test checks both parse.
            (["qmp", "disk-add"], "FORMAT") => words(&["raw", "qcow2"]),
            _ => Value::Other,
        }
    }
}

/// Where `cli::parse` lets a VM come before the verb; a test holds these to
/// what the parser does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shorthand {
    /// `qmp VM ...` means `qmp command VM ...`.
    ImpliedVerb(&'static str),
    /// `snapshot VM VERB ...` means `snapshot VERB VM ...`.
    VmBeforeVerb,
}

impl Shorthand {
    fn of(path: &[&str]) -> Option<Shorthand> {
        match path {
            ["qmp"] => Some(Shorthand::ImpliedVerb("command")),
            ["snapshot"] => Some(Shorthand::VmBeforeVerb),
            _ => None,
        }
    }
}
