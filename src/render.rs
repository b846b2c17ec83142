//! Turning results into what the user reads: aligned tables for people,
//! JSON with stable field names (docs/json.md) for scripts. Rendering never
//! queries anything.

use std::fmt::Write as _;
use std::io;

use serde_json::{Value, json};

use crate::error::Error;
use crate::terminal::safe_field;

/// What a command returns: its result for scripts (`--json`), for people,
/// and the exit code it carries. Nothing here prints or queries: `main`
/// writes it to stdout.
pub trait Output {
    /// The `--json` form (docs/json.md).
    fn json(&self) -> Value;

    /// The form for people, before escaping.
    fn text(&self) -> String;

    /// Results that carry a verdict exit 1 when it is bad (`storage
    /// verify` with a problem, `doctor` with a failed check).
    fn exit_code(&self) -> u8 {
        crate::error::exit::SUCCESS
    }

    /// Write the result to `out`, whole. Text for people has its control
    /// characters made visible; JSON stays JSON, with the characters a
    /// terminal would act on written as JSON escapes. `ls` overrides this
    /// to write a row at a time.
    fn write(&self, json: bool, out: &mut dyn io::Write) -> io::Result<()> {
        use crate::terminal::{safe, safe_json};
        if json {
            out.write_all(safe_json(&pretty(&self.json())).as_bytes())
        } else {
            out.write_all(safe(&self.text(), false).as_bytes())
        }
    }
}

/// A command that prints its own output as it goes (console, events).
pub struct Silent;

impl Output for Silent {
    fn json(&self) -> Value {
        Value::Null
    }

    fn text(&self) -> String {
        String::new()
    }

    fn write(&self, _json: bool, _out: &mut dyn io::Write) -> io::Result<()> {
        Ok(())
    }
}

/// Text printed as it is: completion scripts, man pages, the files `man
/// --dir` wrote.
pub struct Text(pub String);

impl Output for Text {
    fn json(&self) -> Value {
        Value::from(self.0.as_str())
    }

    fn text(&self) -> String {
        self.0.clone()
    }
}

/// A file written (`qmp screendump`, `disk create`): its path.
pub struct Written(pub camino::Utf8PathBuf);

impl Output for Written {
    fn json(&self) -> Value {
        json!({ "file": self.0.as_str() })
    }

    fn text(&self) -> String {
        format!("{}\n", safe_field(self.0.as_str()))
    }
}

/// A value as `--json` prints it: pretty, one trailing newline.
pub fn pretty(value: &Value) -> String {
    let mut text =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// A serializable result as a JSON value (keys in order, as `json!` has
/// them).
pub fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// Left-aligned columns two spaces apart, no trailing blanks. Cells are
/// escaped first, so each stays on its line and widths count what is shown.
pub fn grid<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(String::from);
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|row| row.each_ref().map(|cell| safe_field(cell)))
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `key: value` lines, values aligned; a value is escaped to stay on its
/// line (an empty key continues the value above).
pub fn key_values(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .map(|(key, value)| {
            let label = if key.is_empty() {
                String::new()
            } else {
                format!("{key}:")
            };
            format!("{label:<width$} {}\n", safe_field(value))
        })
        .collect()
}

/// An error for `--json` callers: the same facts as the human report, safe
/// to print on a terminal.
pub fn error_json(err: &Error) -> String {
    use miette::Diagnostic;
    let value = json!({
        "error": {
            "code": err.code().map(|c| c.to_string()),
            "message": err.to_string(),
            "help": err.help().map(|h| h.to_string()),
            "exit_code": err.exit_code(),
        }
    });
    crate::terminal::safe_json(&format!("{value}\n"))
}

pub mod config;

#[cfg(test)]
mod proptests;

/// `n` in decimal digits, written into the end of `buf` without
/// allocating (also between fork and exec).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
#[test]
fn decimal_writes_every_digit() {
    let mut buf = [0u8; 20];
    assert_eq!(decimal(0, &mut buf), b"0");
    assert_eq!(decimal(4_194_304, &mut buf), b"4194304");
    assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
}
