use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::error::Result;
use crate::render::Output;
use crate::render::config::{config_json, info_text};
use crate::vm::Vm;

use super::Env;

/// Show a VM's whole configuration.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "info")]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
}

pub fn run(env: &Env, args: Args) -> Result<Info> {
    info(env, &args.vm).map(Info)
}

/// A VM's record and whole config.
pub struct Info(pub Vm);

impl Output for Info {
    fn json(&self) -> Value {
        let vm = &self.0;
        json!({
            "id": vm.id.as_str(),
            "name": vm.name.as_str(),
            "status": vm.status.as_str(),
            "created": vm.created.rfc3339(),
            "updated": vm.updated.rfc3339(),
            "sources": vm.sources,
            "trusted": vm.trusted,
            "pending_restart": vm.pending_restart(),
            "config": config_json(&vm.config),
        })
    }

    fn text(&self) -> String {
        info_text(&self.0)
    }
}

/// One VM, by name, id or id prefix.
pub fn info(env: &Env, query: &str) -> Result<Vm> {
    super::find_reconciled(env, query)
}
