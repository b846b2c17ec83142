use crate::config::{self, Layer, Name, VmConfig};
use crate::error::{Error, Result};
use crate::store::{Access, Store};
use crate::vm::{Timestamp, Vm};

use super::{ConfigInput, Env, check_images, load_files, needs_trust, untrusted};

pub struct Applied {
    pub vm: Vm,
    /// True when the VM did not exist and was created.
    pub created: bool,
}

/// Merge config files and overrides into the VM `query`, or create it under
/// that name when no VM matches. A `name` in a file must agree with the VM's
/// name; renaming takes `--name`.
///
/// The new record is worked out and its images checked (qemu-img) without
/// holding the store; the write then takes it only if the VM's definition
/// is still what it was read as.
pub fn apply(env: &Env, query: &str, mut input: ConfigInput) -> Result<Applied> {
    let rename = input.overrides.name.take();
    let (mut layers, sources) = load_files(env, &input.files)?;
    let nothing_given = input.is_empty() && rename.is_none() && !input.trust;
    let trust = input.trust;
    layers.push(input.overrides.into_layer());

    // Read, then let go of the store: the image checks below run qemu-img,
    // and no command should wait on the store for that.
    let read = match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => match store.find(query) {
            Ok(vm) => Some(vm),
            Err(Error::VmNotFound { .. }) => None,
            Err(other) => return Err(other),
        },
        None => None,
    };
    let Some(before) = read else {
        if nothing_given {
            return Err(Error::usage(
                format!("no VM `{query}`, and nothing to define it from"),
                "give config files or options, or use `maqet add --empty --name NAME`",
            ));
        }
        let name = match rename {
            Some(n) => n,
            None => query
                .parse::<Name>()
                .map_err(|why| Error::invalid(why, "give the new VM a valid name, or --name"))?,
        };
        let config = merged(env.base_config(), layers, &name)?;
        if let Some(what) = needs_trust(env, &config)
            && !trust
        {
            return Err(untrusted(name.as_str(), what, "apply it with --trust"));
        }
        let mut vm = Vm::new(name, config, sources, false)?;
        vm.trusted = trust;
        check_images(env, &vm)?;
        // put refuses the name if another command took it meanwhile.
        Store::open(&env.dirs)?.write(|tx| tx.put(&vm))?;
        return Ok(Applied { vm, created: true });
    };
    if nothing_given {
        return Err(Error::usage(
            format!("nothing to apply to `{}`", before.name),
            "give config files, or options such as --memory or --cpus",
        ));
    }
    let mut vm = before.clone();
    if let Some(new_name) = rename {
        vm.name = new_name;
    }
    vm.config = merged(vm.config.clone(), layers, &vm.name)?;
    // Trust covers the arguments and binary it was given for: a change to
    // either needs it again.
    let changed =
        before.config.arguments != vm.config.arguments || before.config.binary != vm.config.binary;
    vm.trusted = trust || (vm.trusted && !changed);
    if let Some(what) = needs_trust(env, &vm.config)
        && !vm.trusted
    {
        return Err(untrusted(
            vm.name.as_str(),
            what,
            &format!(
                "apply it with --trust (`maqet apply {} ... --trust`)",
                vm.name
            ),
        ));
    }
    // Each file once, in the order first applied.
    for source in sources {
        if !vm.sources.contains(&source) {
            vm.sources.push(source);
        }
    }
    vm.updated = Timestamp::now();
    check_images(env, &vm)?;
    Store::open(&env.dirs)?.write(|tx| {
        // Start and stop change only the runtime fields meanwhile: keep
        // theirs. Another apply or a removal makes this one stale.
        let mut now = match tx.get(&vm.id) {
            Err(Error::VmNotFound { .. }) => return Err(changed_meanwhile(&before)),
            other => other?,
        };
        if now.name != before.name
            || now.config != before.config
            || now.sources != before.sources
            || now.trusted != before.trusted
        {
            return Err(changed_meanwhile(&before));
        }
        now.name = vm.name.clone();
        now.config = vm.config.clone();
        now.sources = vm.sources.clone();
        now.trusted = vm.trusted;
        now.updated = vm.updated;
        tx.put(&now)?;
        Ok(Applied {
            vm: now,
            created: false,
        })
    })
}

fn changed_meanwhile(vm: &Vm) -> Error {
    Error::Refused {
        message: format!(
            "`{}` was changed or removed by another command while this apply ran",
            vm.name
        ),
        help: format!(
            "nothing was applied; check it with `maqet info {}`, then apply again",
            vm.name
        ),
    }
}

/// Merge `layers` onto a VM's config. The files' `arguments`, if any
/// gives some, replace the stored list (appended among themselves, as at
/// `add`): applying the same files twice gives the same VM.
fn merged(mut base: VmConfig, layers: Vec<Layer>, name: &Name) -> Result<VmConfig> {
    if layers.iter().any(|l| l.arguments.is_some()) {
        base.arguments.clear();
    }
    let (config, file_name) = config::merge(base, layers)?;
    match file_name {
        Some(other) if &other != name => Err(Error::invalid(
            format!("the config names the VM `{other}`, but it is being applied to `{name}`"),
            format!(
                "to rename `{name}`, give --name {other}; otherwise remove `name` from the file"
            ),
        )),
        _ => Ok(config),
    }
}
