//! From a parsed command line to a command's [`Output`]: sets up what every
//! command shares (settings, logging, directories), then hands the
//! command's arguments to its `run` (src/commands/<name>.rs).

use serde_json::{Value, json};

use crate::cli::{Cli, Command};
use crate::commands::{self, Env};
use crate::error::{Error, Result};
use crate::render::Output;

pub fn run(cli: Cli) -> Result<Box<dyn Output>> {
    let command = match cli.command {
        // Generated documents need no environment at all.
        Some(Command::Completions(args)) => return out(Ok(commands::completions::run(args))),
        Some(Command::Man(args)) => return out(commands::man::run(args)),
        command => command,
    };
    crate::store::panic_if_asked("command");
    let cwd = Env::current_dir()?;
    let settings = match &command {
        // Help-like commands work whatever the settings file says.
        None => crate::settings::Settings::default(),
        Some(_) => crate::settings::load(cli.config_dir.as_deref(), &cwd)?,
    };
    let verbosity = settings
        .log_level
        .map_or(0, |l| l.verbosity())
        .max(cli.verbose);
    // The log file goes through the path filter like every path a user
    // gives (a symlinked directory into /etc is refused, and so are maqet's
    // own directories: a log over the store would damage it); it is then
    // opened by the name given, never through a final symlink.
    let log_file = match cli.log_file.as_deref() {
        Some(p) => {
            let env = Env::from_process(
                cwd.clone(),
                cli.data_dir.as_deref(),
                cli.runtime_dir.as_deref(),
                settings.clone(),
            )?;
            env.policy.check(p.as_os_str(), &cwd).map_err(Error::path)?;
            Some(cwd.join(p))
        }
        None => None,
    };
    let log_file = log_file.as_deref().map(crate::log::open_file).transpose()?;
    crate::log::init(verbosity, log_file);
    if cli.version {
        return out(Ok(Version));
    }
    let Some(command) = command else {
        return Err(Error::usage(
            "no command given",
            "run `maqet --help` to see the commands",
        ));
    };
    let (data_dir, runtime_dir) = (cli.data_dir.as_deref(), cli.runtime_dir.as_deref());
    let env = Env::from_process(cwd, data_dir, runtime_dir, settings)?;
    crate::log::debug(format_args!(
        "data dir {}, runtime dir {}",
        env.dirs.data, env.dirs.runtime
    ));
    match command {
        Command::Add(args) => out(commands::add::run(&env, args)),
        Command::Apply(args) => out(commands::apply::run(&env, args)),
        Command::Ls(args) => out(commands::ls::run(&env, args)),
        Command::Info(args) => out(commands::info::run(&env, args)),
        Command::Rm(args) => out(commands::rm::run(&env, args)),
        Command::Start(args) => out(commands::start::run(&env, args)),
        Command::Stop(args) => out(commands::stop::run(&env, args)),
        Command::Status(args) => out(commands::status::run(&env, args)),
        Command::Inspect(args) => out(commands::status::run_inspect(&env, args)),
        Command::Qmp(args) => commands::qmp::run(&env, args),
        Command::Console(args) => out(commands::console::run(&env, args, cli.json)),
        Command::Run(args) => commands::run::run(&env, args),
        Command::Snapshot(args) => out(commands::snapshot::run(&env, args)),
        Command::Disk(args) => out(commands::disk::run(&env, args)),
        Command::Storage(args) => commands::storage::run(&env, args),
        Command::Doctor(args) => out(commands::doctor::run(&env, args)),
        Command::Cleanup(args) => out(commands::doctor::run_cleanup(&env, args)),
        Command::Export(args) => out(commands::export::run(&env, args)),
        Command::Ssh(args) => commands::ssh::run(&env, args),
        Command::Completions(_) | Command::Man(_) => unreachable!("answered above"),
    }
}

fn out<T: Output + 'static>(output: Result<T>) -> Result<Box<dyn Output>> {
    output.map(|o| Box::new(o) as Box<dyn Output>)
}

/// `maqet --version`.
struct Version;

impl Output for Version {
    fn json(&self) -> Value {
        json!({ "version": env!("CARGO_PKG_VERSION") })
    }

    fn text(&self) -> String {
        format!("maqet {}\n", env!("CARGO_PKG_VERSION"))
    }
}
