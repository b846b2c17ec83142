use std::io::{Seek, Write};
use std::time::{Duration, Instant};

use std::io::IsTerminal;

use argh::{ArgsInfo, FromArgs};

use super::session::running;
use super::{Env, Note, notify};
use crate::console::{self, Ended};
use crate::error::{Error, Result};
use crate::layout::RuntimePaths;
use crate::qemu::process::{Liveness, liveness};
use crate::render::Silent;

/// How long a piped session keeps printing after stdin ends, waiting for
/// the guest's answer to the last line.
pub const PIPE_LINGER: Duration = Duration::from_millis(1500);

/// Attach to a VM's serial console, or print what it printed.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "console",
    note = "On a terminal, Ctrl-] detaches. Without a terminal, stdin goes to the guest and its\n\
            output to stdout; after stdin ends maqet keeps printing until the guest is quiet\n\
            for 1.5 s. The log keeps everything the guest printed, across runs; at a start it is\n\
            rotated to console.log.1 once it passes 8 MiB.",
    example = "maqet console web\necho 'uname -a' | maqet console web\nmaqet console web --log --follow"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// print the console log instead of attaching
    #[argh(switch)]
    pub log: bool,

    /// with --log: keep printing until the VM stops
    #[argh(switch)]
    pub follow: bool,
}

/// The console's output goes straight to the terminal (attach) or stdout
/// (`--log`); nothing is left to print after.
pub fn run(env: &Env, args: Args, json: bool) -> Result<Silent> {
    if args.log {
        let mut out = std::io::stdout().lock();
        if json {
            // The guest wrote it: under --json it is data, one
            // `{"line": ...}` per line, never raw on stdout.
            let mut lines = console::JsonLines::new(&mut out);
            print_log(env, &args.vm, args.follow, &mut lines)?;
            lines
                .finish()
                .map_err(|e| Error::io("cannot write", "stdout", e))?;
        } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            // What the guest printed is shown, not obeyed, by the terminal.
            let mut visible = console::Visible::new(&mut out);
            print_log(env, &args.vm, args.follow, &mut visible)?;
            visible
                .flush()
                .map_err(|e| Error::io("cannot write", "stdout", e))?;
        } else {
            print_log(env, &args.vm, args.follow, &mut out)?;
        }
        return Ok(Silent);
    }
    if args.follow {
        return Err(Error::usage(
            "--follow goes with --log",
            "maqet console VM --log --follow",
        ));
    }
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    attach(env, &args.vm, tty, &mut notify)?;
    Ok(Silent)
}

/// Attach to a running VM's serial console. One session at a time per VM.
pub fn attach(env: &Env, query: &str, tty: bool, note: &mut dyn FnMut(Note<'_>)) -> Result<Ended> {
    let vm = running(env, query)?;
    let rt = vm.runtime.clone().ok_or_else(|| Error::VmNotFound {
        query: query.into(),
    })?;
    let lock_path = RuntimePaths::new(rt.dir.clone()).console_lock;
    let Some(mut lock) = crate::lock::try_exclusive(&lock_path)? else {
        let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
        let holder = holder.trim();
        return Err(Error::Refused {
            message: format!(
                "the console of `{}` is already attached{}",
                vm.name,
                if holder.is_empty() { String::new() } else { format!(" (maqet pid {holder})") }
            ),
            help: "detach the other session first (Ctrl-]), or read along with `maqet console VM --log --follow`".into(),
        });
    };
    // Say who holds it, for the error above.
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = writeln!(&mut *lock, "{}", std::process::id());
    let mut stream =
        crate::qmp::connect_private(&rt.console_socket, Instant::now() + Duration::from_secs(5))?;
    if tty {
        note(Note::Status(&format!(
            "connected to the serial console of {}; press Ctrl-] to detach",
            vm.name
        )));
    }
    let ended = console::attach(&mut stream, tty, PIPE_LINGER)
        .map_err(|e| Error::io("console session on", rt.console_socket.clone(), e))?;
    if tty {
        let why = match ended {
            Ended::Detached => "detached",
            Ended::Closed => "the VM closed its console (it stopped?)",
            Ended::InputDone => "input ended",
            Ended::Signalled => "interrupted",
        };
        // The terminal is back in its normal mode here; start a fresh line
        // after whatever the guest printed last.
        eprintln!();
        note(Note::Status(why));
    }
    if ended == Ended::Signalled {
        return Err(Error::Interrupted);
    }
    Ok(ended)
}

/// Print everything the VM printed on its serial console (this run and
/// earlier ones); with `follow`, keep printing until the VM stops.
pub fn print_log(env: &Env, query: &str, follow: bool, out: &mut dyn Write) -> Result<()> {
    let vm = super::read(env, query)?;
    let path = env.dirs.vm(&vm.id).runtime.console_log;
    if !follow && !path.exists() {
        return Err(Error::Invalid {
            message: format!("`{}` has no console log yet", vm.name),
            help: format!("it appears once the VM has run: `maqet start {}`", vm.name),
        });
    }
    let rt = vm.runtime.clone();
    let mut still_running = || {
        rt.as_ref().is_some_and(|rt| {
            !matches!(
                liveness(rt.pid, rt.start_ticks, &rt.pidfile),
                Liveness::Gone { .. }
            )
        })
    };
    console::print_log(&path, follow, out, &mut still_running)
        .map_err(|e| Error::io("cannot read the console log", path.clone(), e))
}
