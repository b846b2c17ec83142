//! `disk`: a VM's disk images.

use argh::{ArgsInfo, FromArgs};

use super::Env;
use crate::error::Result;
use crate::render::Written;

/// Disk images of a VM.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "disk")]
pub struct Args {
    #[argh(subcommand)]
    pub action: Verb,
}

#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand)]
pub enum Verb {
    Create(CreateArgs),
}

/// Create a drive's image now instead of at start (never overwrites).
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "create", example = "maqet disk create web root")]
pub struct CreateArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
    /// the drive
    #[argh(positional, arg_name = "DRIVE")]
    pub drive: String,
}

pub fn run(env: &Env, args: Args) -> Result<Written> {
    match args.action {
        Verb::Create(a) => super::storage::disk_create(env, &a.vm, &a.drive).map(Written),
    }
}
