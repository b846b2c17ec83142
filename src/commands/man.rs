//! `man`: the man pages, generated from the command line's one definition
//! (src/docgen.rs): printed, or written into a directory.

use argh::{ArgsInfo, FromArgs};
use camino::Utf8PathBuf;

use crate::error::{Error, Result};
use crate::render::Text;

/// Print a man page (roff): maqet(1), or one command's.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "man",
    example = "maqet man | man -l -\nmaqet man start | man -l -\nmaqet man --dir ~/.local/share/man/man1"
)]
pub struct Args {
    /// a command, e.g. start (default: the main page)
    #[argh(positional, arg_name = "COMMAND")]
    pub command: Option<String>,

    /// write every page (maqet.1, maqet-COMMAND.1) into this directory
    #[argh(option, arg_name = "DIR")]
    pub dir: Option<Utf8PathBuf>,
}

pub fn run(args: Args) -> Result<Text> {
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", dir.clone(), e))?;
        let mut written = String::new();
        for (name, text) in crate::docgen::man_pages() {
            let path = dir.join(&name);
            std::fs::write(&path, text).map_err(|e| Error::io("cannot write", path.clone(), e))?;
            written.push_str(&format!("{path}\n"));
        }
        return Ok(Text(written));
    }
    crate::docgen::man(args.command.as_deref())
        .map(Text)
        .map_err(|pages| {
            Error::usage(
                format!("no man page `{}`", args.command.as_deref().unwrap_or("")),
                pages,
            )
        })
}
