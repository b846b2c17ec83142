//! Defining a new VM, the part `add` and `run` share: merge the config,
//! check it, store it.

use crate::config::{self, Layer, Name, VmConfig};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::vm::Vm;

use super::{Env, check_images, needs_trust, untrusted};

/// The config and name `layers` define, merged onto the defaults.
pub(crate) fn defined(env: &Env, layers: Vec<Layer>) -> Result<(Name, VmConfig)> {
    let (config, name) = config::merge(env.base_config(), layers)?;
    let name = name.ok_or_else(|| {
        Error::invalid(
            "the VM has no name",
            "add `name: \"...\"` to the config, or give --name",
        )
    })?;
    Ok((name, config))
}

/// A new, checked VM from a merged config, not yet stored.
pub(crate) fn new_vm(
    env: &Env,
    name: Name,
    config: VmConfig,
    sources: Vec<camino::Utf8PathBuf>,
    auto_remove: bool,
    trust: bool,
) -> Result<Vm> {
    if let Some(what) = needs_trust(env, &config)
        && !trust
    {
        return Err(untrusted(name.as_str(), what, "add it again with --trust"));
    }
    let mut vm = Vm::new(name, config, sources, auto_remove)?;
    vm.trusted = trust;
    check_images(env, &vm)?;
    Ok(vm)
}

/// Store a VM made by [`new_vm`].
pub(crate) fn store_new(env: &Env, vm: &Vm) -> Result<()> {
    let store = Store::open(&env.dirs)?;
    store.write(|tx| tx.put(vm))
}
