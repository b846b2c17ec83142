use argh::{ArgsInfo, FromArgs};
use camino::Utf8PathBuf;
use serde::Serialize;

use crate::config::{Cpus, Layer, Memory, Name};
use crate::error::{Error, Result};
use crate::render::{Output, to_json};
use crate::vm::Vm;

use super::define::{defined, new_vm, store_new};
use super::{ConfigInput, Env, load_files};

/// Define a new VM from RON config files; prints its id.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "add",
    note = "Later files win; storage and network entries with the same name replace earlier ones.",
    example = "maqet add vm.ron\nmaqet add base.ron big.ron --name web --memory 4G\nmaqet add --empty --name scratch"
)]
pub struct Args {
    /// config files (RON)
    #[argh(positional, arg_name = "CONFIG")]
    pub configs: Vec<Utf8PathBuf>,

    /// the VM's name (wins over the files)
    #[argh(option, arg_name = "NAME")]
    pub name: Option<Name>,

    /// guest memory, e.g. 2G (wins over the files)
    #[argh(option, arg_name = "MEMORY")]
    pub memory: Option<Memory>,

    /// virtual CPUs (wins over the files)
    #[argh(option, arg_name = "CPUS")]
    pub cpus: Option<Cpus>,

    /// QEMU program name or path (wins over the files)
    #[argh(option, arg_name = "BINARY")]
    pub binary: Option<String>,

    /// allow this VM's raw QEMU `arguments` and custom `binary` (see
    /// docs/security.md): a config file alone cannot grant them
    #[argh(switch)]
    pub trust: bool,

    /// define a VM with no config file, from defaults and options only
    #[argh(switch)]
    pub empty: bool,
}

pub fn run(env: &Env, args: Args) -> Result<Added> {
    let input = ConfigInput::new(
        env,
        args.configs,
        (args.name, args.memory, args.cpus, args.binary),
        args.trust,
    )?;
    let vm = add(env, input, args.empty)?;
    Ok(Added {
        id: vm.id.to_string(),
        name: vm.name.to_string(),
    })
}

/// The new VM: its id for people (`maqet add vm.ron` prints only that).
#[derive(Serialize)]
pub struct Added {
    pub id: String,
    pub name: String,
}

impl Output for Added {
    fn json(&self) -> serde_json::Value {
        to_json(self)
    }

    fn text(&self) -> String {
        format!("{}\n", self.id)
    }
}

/// Define a new VM. `empty` allows doing so without any config file.
pub fn add(env: &Env, input: ConfigInput, empty: bool) -> Result<Vm> {
    match (input.files.is_empty(), empty) {
        (true, false) => {
            return Err(Error::usage(
                "add needs a config file",
                "give one or more RON files (see examples/minimal.ron), or --empty --name NAME for a VM from defaults",
            ));
        }
        (false, true) => {
            return Err(Error::usage(
                "--empty defines a VM without config files, but files were given",
                "drop --empty, or drop the files",
            ));
        }
        _ => {}
    }
    let (mut layers, sources) = load_files(env, &input.files)?;
    layers.push(input.overrides.into_layer());
    define(env, layers, sources, false, input.trust)
}

/// Merge layers onto the defaults and store the result as a new VM.
fn define(
    env: &Env,
    layers: Vec<Layer>,
    sources: Vec<camino::Utf8PathBuf>,
    auto_remove: bool,
    trust: bool,
) -> Result<Vm> {
    let (name, config) = defined(env, layers)?;
    let vm = new_vm(env, name, config, sources, auto_remove, trust)?;
    store_new(env, &vm)?;
    Ok(vm)
}
