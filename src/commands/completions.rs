//! `completions`: a shell completion script, generated from the command
//! line's one definition (src/docgen.rs).

use argh::{ArgsInfo, FromArgs};

use crate::render::Text;

/// Print a shell completion script.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "completions",
    example = "maqet completions bash > ~/.local/share/bash-completion/completions/maqet\n\
               maqet completions zsh > ~/.zfunc/_maqet\n\
               maqet completions fish > ~/.config/fish/completions/maqet.fish"
)]
pub struct Args {
    /// bash, zsh or fish
    #[argh(positional, arg_name = "SHELL")]
    pub shell: crate::docgen::Shell,
}

pub fn run(args: Args) -> Text {
    Text(crate::docgen::completion(args.shell))
}
