use crate::config::Layer;
use crate::error::{Error, Result};
use crate::vm::Vm;

use super::define::{defined, new_vm, store_new};
use super::{ConfigInput, Env, load_files};

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
