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
/// only the column widths are worked out first. Each line is put together
/// by hand, not by `format!`: a listing of 100 000 VMs spent most of its
/// time padding cells (docs/performance.md).
fn write_table(rows: &Rows, out: &mut dyn io::Write) -> io::Result<()> {
    let header = ["NAME", "ID", "STATUS", "MEMORY", "CPUS"];
    let mut widths = header.map(str::len);
    let mut memory = MemoryText::default();
    for row in rows.iter() {
        let cells = [
            row.name.len(),
            crate::vm::VmId::SHORT,
            row.status.as_str().len(),
            memory.of(row.memory).len(),
        ];
        for (w, len) in widths.iter_mut().zip(cells) {
            *w = (*w).max(len);
        }
    }
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let [name, id, status, mem, _] = widths;
    let mut line = Vec::with_capacity(128);
    let [h_name, h_id, h_status, h_memory, h_cpus] = header;
    for (text, width) in [
        (h_name, name),
        (h_id, id),
        (h_status, status),
        (h_memory, mem),
    ] {
        cell(&mut line, text, width);
    }
    line.extend_from_slice(h_cpus.as_bytes());
    line.push(b'\n');
    out.write_all(&line)?;
    for row in rows.iter() {
        line.clear();
        cell(&mut line, row.name, name);
        cell(&mut line, &row.short_id(), id);
        cell(&mut line, row.status.as_str(), status);
        cell(&mut line, memory.of(row.memory), mem);
        decimal(&mut line, u64::from(row.cpus));
        line.push(b'\n');
        out.write_all(&line)?;
    }
    out.flush()
}

/// `text` left-aligned in `width` columns, then the two-space gap.
fn cell(line: &mut Vec<u8>, text: &str, width: usize) {
    line.extend_from_slice(text.as_bytes());
    line.resize(line.len() + width.saturating_sub(text.len()) + 2, b' ');
}

fn decimal(line: &mut Vec<u8>, n: u64) {
    line.extend_from_slice(crate::render::decimal(n, &mut [0u8; 20]));
}

/// A size as `ls` shows it, formatted again only when it changes: most
/// VMs of a store share a few sizes.
#[derive(Default)]
struct MemoryText {
    last: Option<crate::config::Bytes>,
    text: String,
}

impl MemoryText {
    fn of(&mut self, bytes: crate::config::Bytes) -> &str {
        if self.last != Some(bytes) {
            self.text = bytes.human();
            self.last = Some(bytes);
        }
        &self.text
    }
}

/// `--json ls`: the same text as the whole array pretty-printed at once,
/// an element at a time, put together by hand (keys in serde_json's
/// order); the name goes through serde_json's escaping.
fn write_json(rows: &Rows, out: &mut dyn io::Write) -> io::Result<()> {
    if rows.is_empty() {
        return out.write_all(b"[]\n");
    }
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let mut memory = MemoryText::default();
    let mut element = Vec::with_capacity(256);
    out.write_all(b"[")?;
    for (i, row) in rows.iter().enumerate() {
        element.clear();
        element.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        element.extend_from_slice(b"  {\n    \"cpus\": ");
        decimal(&mut element, u64::from(row.cpus));
        element.extend_from_slice(b",\n    \"id\": \"");
        element.extend_from_slice(row.id().as_bytes());
        element.extend_from_slice(b"\",\n    \"memory\": \"");
        element.extend_from_slice(memory.of(row.memory).as_bytes());
        element.extend_from_slice(b"\",\n    \"memory_bytes\": ");
        decimal(&mut element, row.memory.0);
        element.extend_from_slice(b",\n    \"name\": ");
        serde_json::to_writer(&mut element, row.name)?;
        element.extend_from_slice(b",\n    \"status\": \"");
        element.extend_from_slice(row.status.as_str().as_bytes());
        element.extend_from_slice(b"\"\n  }");
        out.write_all(&element)?;
    }
    out.write_all(b"\n]\n")?;
    out.flush()
}

fn summary_json(vm: Row<'_>) -> Value {
    json!({
        "name": vm.name,
        "id": &*vm.id(),
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
