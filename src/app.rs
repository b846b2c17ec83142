//! From a parsed command line to a [`Report`]: builds the typed inputs,
//! asks the user when it must, and calls the command.

use crate::cli::{Cli, Command, ManArgs};

use crate::commands::{self, Env};
use crate::error::{Error, Result};
use crate::render::{Output, Report};

pub fn run(cli: Cli) -> Result<Box<dyn Output>> {
    run_report(cli).map(|r| Box::new(r) as Box<dyn Output>)
}

fn run_report(cli: Cli) -> Result<Report> {
    // Generated documents need no environment at all.
    match &cli.command {
        Some(Command::Completions(args)) => {
            return Ok(Report::Text(crate::docgen::completion(args.shell)));
        }
        Some(Command::Man(ManArgs { dir: Some(dir), .. })) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir.clone(), e))?;
            let mut written = Vec::new();
            for (name, text) in crate::docgen::man_pages() {
                let path = dir.join(&name);
                std::fs::write(&path, text)
                    .map_err(|e| Error::io("cannot write", path.clone(), e))?;
                written.push(path);
            }
            return Ok(Report::Text(
                written.iter().map(|p| format!("{p}\n")).collect(),
            ));
        }
        Some(Command::Man(args)) => {
            return crate::docgen::man(args.command.as_deref())
                .map(Report::Text)
                .map_err(|pages| {
                    Error::usage(
                        format!("no man page `{}`", args.command.as_deref().unwrap_or("")),
                        pages,
                    )
                });
        }
        _ => {}
    }
    let cwd = Env::current_dir()?;
    let settings = match &cli.command {
        // Help-like commands work whatever the settings file says.
        None => crate::settings::Settings::default(),
        Some(_) => crate::settings::load(cli.config_dir.as_deref(), &cwd)?,
    };
    let verbosity = settings
        .log_level
        .map_or(0, |l| l.verbosity())
        .max(cli.verbose);
    // The log file goes through the path filter like every path a user
    // gives (a symlinked directory into /etc is refused); it is then opened
    // by the name given, never through a final symlink.
    let log_file = cli
        .log_file
        .as_deref()
        .map(|p| {
            crate::paths::PathPolicy::from_env()
                .check(p.as_os_str(), &cwd)
                .map(|_| cwd.join(p))
                .map_err(Error::path)
        })
        .transpose()?;
    let log_file = log_file.as_deref().map(open_log_file).transpose()?;
    crate::log::init(verbosity, log_file);
    if cli.version {
        return Ok(Report::Version);
    }
    let Some(command) = cli.command else {
        return Err(Error::usage(
            "no command given",
            "run `maqet --help` to see the commands",
        ));
    };
    let json = cli.json;
    let env = Env::from_process(
        cwd,
        cli.data_dir.as_deref(),
        cli.runtime_dir.as_deref(),
        settings,
    )?;
    crate::log::debug(format_args!(
        "data dir {}, runtime dir {}",
        env.dirs.data, env.dirs.runtime
    ));
    match command {
        Command::Add(args) => commands::add::run(&env, args).map(Report::boxed),
        Command::Apply(args) => commands::apply::run(&env, args).map(Report::boxed),
        Command::Ls(args) => commands::ls::run(&env, args).map(Report::boxed),
        Command::Info(args) => commands::info::run(&env, args).map(Report::boxed),
        Command::Rm(args) => commands::rm::run(&env, args).map(Report::boxed),
        Command::Start(args) => commands::start::run(&env, args).map(Report::boxed),
        Command::Stop(args) => commands::stop::run(&env, args).map(Report::boxed),
        Command::Status(args) => commands::status::run(&env, args).map(Report::boxed),
        Command::Inspect(args) => commands::status::run_inspect(&env, args).map(Report::boxed),
        Command::Qmp(args) => commands::qmp::run(&env, args).map(Report::Boxed),
        Command::Run(args) => commands::run::run(&env, args).map(Report::boxed),
        Command::Snapshot(args) => commands::snapshot::run(&env, args).map(Report::boxed),
        Command::Completions(_) | Command::Man(_) => unreachable!("answered above"),
        Command::Doctor(args) => commands::doctor::run(&env, args).map(Report::boxed),
        Command::Cleanup(args) => commands::doctor::run_cleanup(&env, args).map(Report::boxed),
        Command::Disk(args) => commands::disk::run(&env, args).map(Report::boxed),
        Command::Storage(args) => commands::storage::run(&env, args).map(Report::Boxed),
        Command::Console(args) => commands::console::run(&env, args, json).map(Report::boxed),
    }
}

/// Open `--log-file` to append: created 0600, never through a symlink, and
/// only a regular file with no other name (not a FIFO, which would block,
/// nor a hard link to someone's file).
fn open_log_file(path: &camino::Utf8Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
        .and_then(|file| {
            let meta = file.metadata()?;
            if meta.is_file() && meta.nlink() == 1 {
                Ok(file)
            } else {
                Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP))
            }
        })
        .map_err(|e| match e.raw_os_error() {
            // ENXIO: a FIFO nobody reads (opened without blocking).
            Some(nix::libc::ELOOP | nix::libc::ENXIO) => Error::UnsafeDir {
                path: path.to_owned(),
                reason: "the log file is a symlink, a hard link or not a regular file".into(),
                help: "give a log file of your own (a new name is fine)".into(),
            },
            _ => Error::io("cannot open the log file", path, e),
        })
}
