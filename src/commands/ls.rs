use std::io::{self, Write as _};

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::error::Result;
use crate::render::Output;
use crate::rows::{Row, Rows};
use crate::store::{Access, Store};
use crate::terminal::safe_field;
use crate::vm::Status;

use super::Env;
use super::survey::survey;

/// List VMs.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "ls")]
pub struct Args {
    /// only VMs in this state: created, starting, running, stopped or crashed
    #[argh(option, arg_name = "STATE")]
    pub status: Option<Status>,

    /// print names only, one per line, as stored (no liveness check; for
    /// shell completion)
    #[argh(switch)]
    pub names: bool,
}

pub fn run(env: &Env, args: Args) -> Result<Listing> {
    if args.names {
        names(env).map(Listing::Names)
    } else {
        list(env, args.status).map(Listing::Rows)
    }
}

/// What `ls` prints: a table (JSON array) of VMs, or their names.
pub enum Listing {
    Rows(Rows),
    Names(Vec<String>),
}

impl Output for Listing {
    fn json(&self) -> Value {
        match self {
            Listing::Rows(rows) => Value::Array(rows.iter().map(summary_json).collect()),
            Listing::Names(names) => json!(names),
        }
    }

    fn text(&self) -> String {
        match self {
            Listing::Rows(_) => {
                let mut out = Vec::new();
                self.write(false, &mut out)
                    .expect("writing to memory cannot fail");
                String::from_utf8(out).expect("rows are UTF-8")
            }
            Listing::Names(names) => names
                .iter()
                .map(|n| format!("{}\n", safe_field(n)))
                .collect(),
        }
    }

    /// A list is written row by row, never built whole in memory.
    fn write(&self, json: bool, out: &mut dyn io::Write) -> io::Result<()> {
        use crate::terminal::{safe, safe_json};
        match self {
            Listing::Rows(rows) if json => write_json(rows, out),
            // Rows hold only validated names, hex ids and numbers.
            Listing::Rows(rows) => write_table(rows, out),
            Listing::Names(_) if json => {
                out.write_all(safe_json(&crate::render::pretty(&self.json())).as_bytes())
            }
            Listing::Names(_) => out.write_all(safe(&self.text(), false).as_bytes()),
        }
    }
}

/// `ls`'s table, aligned like key/value blocks, written a row at a time:
/// only the column widths are worked out first.
fn write_table(rows: &Rows, out: &mut dyn io::Write) -> io::Result<()> {
    let header = ["NAME", "ID", "STATUS", "MEMORY", "CPUS"];
    let mut widths = header.map(str::len);
    for row in rows.iter() {
        let cells = [
            row.name.len(),
            row.short_id().len(),
            row.status.as_str().len(),
            row.memory.human().len(),
        ];
        for (w, len) in widths.iter_mut().zip(cells) {
            *w = (*w).max(len);
        }
    }
    let mut out = io::BufWriter::new(out);
    let [name, id, status, memory, _] = widths;
    let [h_name, h_id, h_status, h_memory, h_cpus] = header;
    writeln!(
        out,
        "{h_name:<name$}  {h_id:<id$}  {h_status:<status$}  {h_memory:<memory$}  {h_cpus}"
    )?;
    for row in rows.iter() {
        writeln!(
            out,
            "{:<name$}  {:<id$}  {:<status$}  {:<memory$}  {}",
            row.name,
            row.short_id(),
            row.status.as_str(),
            row.memory.human(),
            row.cpus
        )?;
    }
    out.flush()
}

/// `--json ls`: the same text as the whole array pretty-printed at once,
/// an element at a time.
fn write_json(rows: &Rows, out: &mut dyn io::Write) -> io::Result<()> {
    if rows.is_empty() {
        return out.write_all(b"[]\n");
    }
    let mut out = io::BufWriter::new(out);
    out.write_all(b"[")?;
    for (i, row) in rows.iter().enumerate() {
        let element = serde_json::to_string_pretty(&summary_json(row))?;
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        for (j, line) in element.lines().enumerate() {
            if j > 0 {
                out.write_all(b"\n")?;
            }
            write!(out, "  {line}")?;
        }
    }
    out.write_all(b"\n]\n")?;
    out.flush()
}

fn summary_json(vm: Row<'_>) -> Value {
    json!({
        "name": vm.name,
        "id": vm.id(),
        "status": vm.status.as_str(),
        "memory": vm.memory.human(),
        "memory_bytes": vm.memory.0,
        "cpus": vm.cpus,
    })
}

/// Every VM, ordered by name, optionally only those in one state. Only the
/// VMs recorded as running are checked (no QMP), and only a packed row of
/// each is kept: `ls` of a large store stays small.
pub fn list(env: &Env, status: Option<Status>) -> Result<Rows> {
    let Some(mut survey) = survey(env)? else {
        return Ok(Rows::default());
    };
    survey.reconcile(env)?;
    let mut rows = survey.rows;
    if let Some(wanted) = status {
        rows.retain(|row| row.status == wanted);
    }
    rows.sort_by_name();
    Ok(rows)
}

/// VM names only, as stored: no liveness check, nothing written. Shell
/// completion calls this on every Tab.
pub fn names(env: &Env) -> Result<Vec<String>> {
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.names(),
        None => Ok(Vec::new()),
    }
}
