use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use maqet::cli::{self, ParseExit};
use maqet::error::exit;

fn main() -> ExitCode {
    maqet::log::quiet_panics();
    // A panic is a bug, and the user still gets an error to act on (exit 1,
    // JSON under --json), never Rust's panic message and exit 101.
    std::panic::catch_unwind(run)
        .unwrap_or_else(|panic| fail(&maqet::Error::internal(&*panic), wants_json()))
}

fn run() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().skip(1).collect()) {
        Ok(cli) => cli,
        Err(ParseExit::Help(text)) => return print(&text, exit::SUCCESS),
        Err(ParseExit::Usage(text)) => {
            let help = "run `maqet --help`, or `maqet COMMAND --help`";
            if wants_json() {
                return fail(&maqet::Error::usage(text.trim_end(), help), true);
            }
            // argh's own message, with the hint every other error carries.
            let text = maqet::terminal::safe(text.trim_end(), false);
            stderr(format_args!("maqet: {text}\n  help: {help}\n"));
            return ExitCode::from(exit::USAGE);
        }
    };
    let json = cli.json;
    match maqet::app::run(cli) {
        Ok(report) => {
            let code = report.exit_code();
            let mut out = std::io::stdout().lock();
            let written = report.write(json, &mut out).and_then(|()| out.flush());
            finish(written, code)
        }
        Err(err) => fail(&err, json),
    }
}

fn fail(err: &maqet::Error, json: bool) -> ExitCode {
    if json {
        // error_json escapes what a terminal would act on, and stays JSON.
        stderr(format_args!("{}", maqet::render::error_json(err)));
    } else {
        report_error(err);
    }
    ExitCode::from(err.exit_code())
}

/// True when `--json` was given. Used only when there is no parsed command
/// line to ask (argh could not parse it, or maqet panicked), so any
/// `--json` counts.
fn wants_json() -> bool {
    std::env::args_os().skip(1).any(|a| a == "--json")
}

/// Write results to stdout; a closed pipe (`maqet ls | head -1`) is success.
fn print(text: &str, code: u8) -> ExitCode {
    let mut out = std::io::stdout().lock();
    finish(
        out.write_all(text.as_bytes()).and_then(|()| out.flush()),
        code,
    )
}

fn finish(written: std::io::Result<()>, code: u8) -> ExitCode {
    match written {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            stderr(format_args!("maqet: cannot write the result: {e}\n"));
            ExitCode::from(exit::FAILED)
        }
    }
}

/// miette's report, in colour only on a terminal and never with NO_COLOR.
fn report_error(err: &maqet::Error) {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut text = String::new();
    let rendered = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .render_report(&mut text, err);
    match rendered {
        Ok(()) => stderr(format_args!("{}", maqet::terminal::safe(&text, color))),
        Err(_) => {
            let text = maqet::terminal::safe(&err.to_string(), false);
            stderr(format_args!("maqet: {text}\n"));
        }
    }
}

/// Diagnostics, written without `eprint!`: that panics when stderr is a
/// closed pipe (`maqet ... 2>&1 | head -1`), and this is the way out for
/// every error, caught panics included.
fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().write_fmt(args);
}
