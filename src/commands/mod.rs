//! One file per command: its argh `Args`, its `run` (validated input, the
//! action, a typed result) and its output type (`render::Output`). The
//! actions print nothing; `main` writes what `run` returns. The rest of
//! this module is what commands share: the environment they run in, config
//! files and options, and reading and saving a VM.

pub mod add;
pub mod apply;
pub mod completions;
pub mod console;
mod define;
pub mod disk;
pub mod doctor;
pub mod export;
pub mod hotplug;
pub mod info;
pub mod ls;
pub mod man;
pub mod qmp;
pub mod rm;
pub mod run;
mod session;
pub mod snapshot;
pub mod ssh;
pub mod start;
pub mod status;
pub mod stop;
pub mod storage;
mod survey;
mod wait;

pub use console::attach as console_attach;
pub use start::{StartOptions, StartOutcome, start};
pub use stop::{StopOptions, stop};
pub use wait::WaitFor;

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::{Layer, Overrides, load_file};
use crate::dirs::{Dirs, DirsEnv};
use crate::error::{Error, Result};
use crate::paths::PathPolicy;

/// Something a long-running command tells the user while it works: the
/// caller decides how (stderr, only on a terminal, ...).
pub enum Note<'a> {
    /// Always shown.
    Warning(&'a str),
    /// Shown on a terminal.
    Progress(&'a str),
    /// Always shown, not a warning (console attach and detach).
    Status(&'a str),
}

/// A file the user asked maqet to write (`--output`, a screendump): its
/// directory through the path filter, which must exist, opened once so the
/// file lands where it was checked; the file's own name is never followed.
/// A symlink there (another user's, in /tmp, aimed at your files) or
/// anything but a regular file is refused before anything is done.
/// Returns the directory and the file's name in it.
pub fn output_file(env: &Env, file: &Utf8Path) -> Result<(crate::paths::dir::CheckedDir, String)> {
    let name = file.file_name().filter(|n| !n.is_empty()).ok_or_else(|| {
        Error::invalid(
            format!("{file} names no file"),
            "give a file name, e.g. out.txt",
        )
    })?;
    let parent = match file.parent() {
        Some(p) if !p.as_str().is_empty() => p,
        _ => Utf8Path::new("."),
    };
    // The whole path, as given (a name inside maqet's own directories, or
    // a symlink there into /etc, is refused as such), then its directory.
    env.policy
        .check(file.as_os_str(), &env.cwd)
        .map_err(Error::path)?;
    let dir = env
        .policy
        .check(parent.as_os_str(), &env.cwd)
        .map_err(Error::path)?;
    if !dir.is_dir() {
        return Err(Error::invalid(
            format!("{dir} is not a directory"),
            "create the directory first, or choose another path",
        ));
    }
    let target = dir.join(name);
    if let Ok(meta) = std::fs::symlink_metadata(&target) {
        if meta.file_type().is_symlink() {
            return Err(Error::Refused {
                message: format!("{target} is a symlink; maqet writes no file through or over one"),
                help: "remove it, or choose another name".into(),
            });
        }
        if !meta.is_file() {
            return Err(Error::Refused {
                message: format!("{target} exists and is not a regular file"),
                help: "choose another file name".into(),
            });
        }
    }
    let dir = crate::paths::dir::CheckedDir::open(&dir, Some(&env.policy))?;
    Ok((dir, name.to_owned()))
}

/// Warnings always reach stderr; progress only when a person is watching.
/// Tell the user; a closed stderr is no reason to fail the command (a
/// warning lost is better than a start abandoned half-way).
pub fn notify(note: Note<'_>) {
    use std::io::{IsTerminal, Write};
    let line = match note {
        Note::Warning(text) => format!("maqet: warning: {text}\n"),
        Note::Status(text) => format!("maqet: {text}\n"),
        Note::Progress(text) if std::io::stderr().is_terminal() => format!("maqet: {text}\n"),
        Note::Progress(text) => return crate::log::info(format_args!("{text}")),
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Where a command runs: its directories, working directory and path policy.
#[derive(Debug, Clone)]
pub struct Env {
    pub dirs: Dirs,
    pub cwd: Utf8PathBuf,
    pub policy: PathPolicy,
    pub settings: crate::settings::Settings,
}

impl Env {
    /// The environment of this process, with the global directory flags
    /// and the settings file.
    pub fn from_process(
        cwd: Utf8PathBuf,
        data_dir: Option<&Utf8Path>,
        runtime_dir: Option<&Utf8Path>,
        settings: crate::settings::Settings,
    ) -> Result<Env> {
        let mut dirs_env = DirsEnv::from_process(
            data_dir.map(|p| p.as_os_str().to_owned()),
            runtime_dir.map(|p| p.as_os_str().to_owned()),
        );
        dirs_env.settings_data_dir = settings.data_dir.clone().map(Into::into);
        dirs_env.settings_runtime_dir = settings.runtime_dir.clone().map(Into::into);
        let dirs = Dirs::resolve(&dirs_env, &cwd)?;
        // The settings file too: a guest given it as a disk could turn
        // confinement off and name the QEMU every later VM runs.
        let mut own: Vec<&Utf8Path> = vec![&dirs.data, &dirs.runtime];
        own.extend(settings.source.as_deref());
        let policy = PathPolicy::from_env()
            .allowing(&settings.allow_write)
            .protecting(&own);
        Ok(Env {
            dirs,
            cwd,
            policy,
            settings,
        })
    }

    /// The working directory, which must be valid UTF-8.
    pub fn current_dir() -> Result<Utf8PathBuf> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot read the working directory", ".", e))?;
        Utf8PathBuf::from_path_buf(cwd).map_err(|p| {
            Error::usage(
                format!("the working directory {} is not valid UTF-8", p.display()),
                "run maqet from a directory whose path is valid UTF-8",
            )
        })
    }

    /// The config every new VM starts from: the defaults, with the settings
    /// file's QEMU program.
    pub fn base_config(&self) -> crate::config::VmConfig {
        let mut config = crate::config::VmConfig::default();
        if let Some(binary) = &self.settings.binary {
            config.binary = binary.clone();
        }
        config
    }
}

/// Config files and command-line overrides for `add` and `apply`.
#[derive(Debug, Default, Clone)]
pub struct ConfigInput {
    pub files: Vec<Utf8PathBuf>,
    pub overrides: Overrides,
    /// `--trust`: the person grants raw `arguments` and a custom `binary`.
    pub trust: bool,
}

/// The options `add`, `apply` and `run` take over the files: `--name`,
/// `--memory`, `--cpus`, `--binary`.
pub type Options = (
    Option<crate::config::Name>,
    Option<crate::config::Memory>,
    Option<crate::config::Cpus>,
    Option<String>,
);

impl ConfigInput {
    /// The files and options of `add`, `apply` or `run`; `--binary` is
    /// resolved against the working directory.
    pub fn new(
        env: &Env,
        files: Vec<Utf8PathBuf>,
        (name, memory, cpus, binary): Options,
        trust: bool,
    ) -> Result<ConfigInput> {
        let binary = binary
            .map(|b| {
                crate::config::Program::resolve(&b, &env.cwd)
                    .map_err(|why| Error::usage(why, "give --binary a program name or a path"))
            })
            .transpose()?;
        Ok(ConfigInput {
            files,
            overrides: Overrides {
                name,
                memory,
                cpus,
                binary,
            },
            trust,
        })
    }

    fn is_empty(&self) -> bool {
        let o = &self.overrides;
        self.files.is_empty()
            && o.name.is_none()
            && o.memory.is_none()
            && o.cpus.is_none()
            && o.binary.is_none()
    }
}

/// What in a config only `--trust` grants: raw QEMU arguments, and a QEMU
/// program other than the default (or the settings file's). `None` when
/// there is nothing.
pub(crate) fn needs_trust(env: &Env, config: &crate::config::VmConfig) -> Option<&'static str> {
    let custom_binary = config.binary != env.base_config().binary;
    match (config.arguments.is_empty(), custom_binary) {
        (true, false) => None,
        (false, true) => Some("raw QEMU `arguments` and a custom `binary`"),
        (false, false) => Some("raw QEMU `arguments`"),
        (true, true) => Some("a custom `binary`"),
    }
}

/// The refusal when a config carries what only `--trust` grants.
pub(crate) fn untrusted(name: &str, what: &str, command: &str) -> Error {
    Error::Refused {
        message: format!(
            "VM `{name}` has {what}: these act on the host with your rights, and a config file alone cannot grant that"
        ),
        help: format!(
            "read the config; if you wrote it and mean it, {command} (see docs/security.md)"
        ),
    }
}

/// Parse every file, in order. Returns the layers and the files' absolute
/// paths. Done before the store is opened: nothing is held while reading.
fn load_files(env: &Env, files: &[Utf8PathBuf]) -> Result<(Vec<Layer>, Vec<Utf8PathBuf>)> {
    let mut layers = Vec::with_capacity(files.len());
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let loaded = load_file(file.as_os_str(), &env.cwd, &env.policy)?;
        sources.push(loaded.path);
        layers.push(loaded.layer);
    }
    Ok((layers, sources))
}

/// Check the backing chains of a VM's images against the path filter, when
/// qemu-img is there to read them (`start` checks again, and needs it).
/// A VM without such images is not checked: no qemu-img is run for it.
fn check_images(env: &Env, vm: &crate::vm::Vm) -> Result<()> {
    crate::storage::check_shares(&vm.config, &env.policy)?;
    let chains = crate::storage::chains_to_check(&vm.config, &env.disks_dir(&vm.id));
    if chains.is_empty() {
        return Ok(());
    }
    if !crate::storage::have_qemu_img() {
        crate::log::warn(format_args!(
            "qemu-img is not installed: backing files are checked at start instead"
        ));
        return Ok(());
    }
    crate::storage::check_chains(&chains, &env.policy).map(drop)
}

impl Env {
    /// Where maqet keeps the images it creates for a VM.
    pub fn disks_dir(&self, id: &crate::vm::VmId) -> Utf8PathBuf {
        self.dirs.vm(id).disks
    }
}

/// One VM by name, id or prefix, as recorded (`start` and `stop` check
/// liveness themselves, under the VM's lock).
pub(crate) fn read(env: &Env, query: &str) -> Result<crate::vm::Vm> {
    use crate::store::{Access, Store};
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.find(query),
        None => Err(Error::VmNotFound {
            query: query.into(),
        }),
    }
}

/// The VM with exactly this id, as recorded (never one *named* like it).
pub(crate) fn read_id(env: &Env, id: &crate::vm::VmId) -> Result<crate::vm::Vm> {
    use crate::store::{Access, Store};
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.get(id),
        None => Err(Error::VmNotFound {
            query: id.to_string(),
        }),
    }
}

/// Record what `start` or `stop` found — status, runtime, last exit, the
/// images made — onto the record as it is now, in one transaction: a
/// config `apply`d meanwhile (apply takes no VM lock) is kept, not
/// overwritten with the one the lifecycle command read.
pub(crate) fn save(env: &Env, vm: &crate::vm::Vm) -> Result<()> {
    crate::store::Store::open(&env.dirs)?.write(|tx| {
        let mut current = tx.get(&vm.id)?;
        current.status = vm.status;
        current.runtime.clone_from(&vm.runtime);
        current.last_exit.clone_from(&vm.last_exit);
        for image in &vm.owned {
            if !current.owned.contains(image) {
                current.owned.push(image.clone());
            }
        }
        tx.put(&current)
    })
}

/// One VM by name, id or prefix, reconciled with what runs: the truth, not
/// the last record.
pub(crate) fn find_reconciled(env: &Env, query: &str) -> Result<crate::vm::Vm> {
    use crate::store::{Access, Store};
    let not_found = || Error::VmNotFound {
        query: query.into(),
    };
    let store = Store::open_existing(&env.dirs, Access::Read)?.ok_or_else(not_found)?;
    let vm = store.find(query)?;
    drop(store);
    // A `run --rm` VM found stopped is removed, and so not found.
    crate::reconcile::reconcile_one(&env.dirs, vm)?.ok_or_else(not_found)
}
