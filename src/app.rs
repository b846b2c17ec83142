//! From a parsed command line to a [`Report`]: builds the typed inputs,
//! asks the user when it must, and calls the command.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{Cli, Command};
use std::time::Duration;

use crate::commands::{
    self, ConfigInput, Env, Note, StartOptions, StartOutcome, StopOptions, Target,
};
use crate::config::{Overrides, Program};
use crate::error::{Error, Result};
use crate::render::Report;

pub fn run(cli: Cli) -> Result<Report> {
    crate::log::init(cli.verbose, cli.log_file.as_deref())?;
    if cli.version {
        return Ok(Report::Version);
    }
    let Some(command) = cli.command else {
        return Err(Error::usage(
            "no command given",
            "run `maqet --help` to see the commands",
        ));
    };
    let env = Env::from_process(cli.data_dir.as_deref(), cli.runtime_dir.as_deref())?;
    crate::log::debug(format_args!(
        "data dir {}, runtime dir {}",
        env.dirs.data, env.dirs.runtime
    ));
    match command {
        Command::Add(args) => {
            let input = ConfigInput {
                files: args.configs,
                overrides: overrides(&env, args.name, args.memory, args.cpus, args.binary)?,
            };
            commands::add(&env, input, args.empty).map(Report::Added)
        }
        Command::Apply(args) => {
            let input = ConfigInput {
                files: args.configs,
                overrides: overrides(&env, args.name, args.memory, args.cpus, args.binary)?,
            };
            commands::apply(&env, &args.vm, input).map(|a| Report::Applied {
                vm: a.vm,
                created: a.created,
            })
        }
        Command::Ls(args) => commands::list(&env, args.status).map(Report::List),
        Command::Info(args) => commands::info(&env, &args.vm).map(|vm| Report::Info(Box::new(vm))),
        Command::Rm(args) => {
            let target = match (args.vm, args.all) {
                (Some(vm), false) => Target::One(vm),
                (None, true) => Target::All,
                (Some(_), true) => {
                    return Err(Error::usage(
                        "give a VM or --all, not both",
                        "`maqet rm NAME` removes one VM; `maqet rm --all` removes every VM",
                    ));
                }
                (None, false) => {
                    return Err(Error::usage(
                        "rm needs a VM or --all",
                        "`maqet rm NAME` removes one VM; `maqet rm --all` removes every VM",
                    ));
                }
            };
            if matches!(target, Target::All) && !args.force {
                confirm("Remove every VM from the registry?")?;
            }
            commands::remove(&env, &target, args.force, &mut notify).map(Report::Removed)
        }
        Command::Start(args) => {
            let opts = StartOptions {
                timeout: Duration::from_secs(args.timeout),
                wait_for: args.wait_for,
                dry_run: args.dry_run,
            };
            match commands::start(&env, &args.vm, &opts, &mut notify)? {
                StartOutcome::DryRun { argv, .. } => Ok(Report::DryRun(argv)),
                StartOutcome::Started { vm, run_state } => Ok(Report::Started { vm, run_state }),
            }
        }
        Command::Stop(args) => {
            let opts = StopOptions {
                timeout: Duration::from_secs(args.timeout),
                force: args.force,
            };
            commands::stop(&env, &args.vm, &opts, &mut notify).map(Report::Stopped)
        }
        Command::Status(args) => {
            commands::status(&env, &args.vm).map(|s| Report::Status(Box::new(s)))
        }
        Command::Inspect(args) => {
            commands::inspect(&env, &args.vm).map(|i| Report::Inspect(Box::new(i)))
        }
    }
}

/// Warnings always reach stderr; progress only when a person is watching.
fn notify(note: Note<'_>) {
    match note {
        Note::Warning(text) => eprintln!("maqet: warning: {text}"),
        Note::Progress(text) if std::io::stderr().is_terminal() => eprintln!("maqet: {text}"),
        Note::Progress(text) => crate::log::info(format_args!("{text}")),
    }
}

fn overrides(
    env: &Env,
    name: Option<crate::config::Name>,
    memory: Option<crate::config::Memory>,
    cpus: Option<crate::config::Cpus>,
    binary: Option<String>,
) -> Result<Overrides> {
    let binary = binary
        .map(|b| {
            Program::resolve(&b, &env.cwd)
                .map_err(|why| Error::usage(why, "give --binary a program name or a path"))
        })
        .transpose()?;
    Ok(Overrides {
        name,
        memory,
        cpus,
        binary,
    })
}

/// Ask on a terminal; refuse when nobody can answer (DESIGN.md §8: never
/// prompt when stdin is not a terminal).
fn confirm(question: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Refused {
            message: "refusing to remove every VM without confirmation".into(),
            help: "stdin is not a terminal, so maqet cannot ask; add --force".into(),
        });
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("cannot read the answer from", "stdin", e))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::Refused {
            message: "nothing removed".into(),
            help: "answer `y` to remove, or add --force".into(),
        })
    }
}
