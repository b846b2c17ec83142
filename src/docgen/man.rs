//! Man pages in roff: `maqet.1`, and `maqet-COMMAND.1` for every command,
//! with the verbs of `qmp`, `snapshot`, `disk` and `storage` as sections of
//! their command's page.

use std::fmt::Write as _;

use argh::{FlagInfo, FlagInfoKind, Optionality, PositionalInfo};

use super::Node;

/// The `maqet` of `.TH`'s footer, from Cargo.toml (the only place the
/// version is written).
const SOURCE: &str = concat!("maqet ", env!("CARGO_PKG_VERSION"));

/// Where maqet keeps its files. dirs.rs and settings.rs decide; this says it.
const FILES: &[(&str, &str)] = &[
    (
        "$XDG_DATA_HOME/maqet/ (else ~/.local/share/maqet/)",
        "The data directory (`--data-dir`, MAQET_DATA_DIR): `maqet.redb`, the registry of VMs; \
         `maqet.lock`, held by the maqet that changes it; `disks/ID/`, the disk images maqet \
         created for a VM.",
    ),
    (
        "$XDG_STATE_HOME/maqet/run/ (else ~/.local/state/maqet/run/)",
        "The runtime directory (`--runtime-dir`, MAQET_RUNTIME_DIR): for each VM that runs or \
         ran, `ID/` with its QMP and console sockets, `qemu.pid`, `qemu.log` and `console.log` \
         (rotated to `console.log.1` at a start once it passes 8 MiB).",
    ),
    (
        "$XDG_CONFIG_HOME/maqet/maqet.ron (else ~/.config/maqet/maqet.ron)",
        "The optional settings file (`--config-dir DIR` reads `DIR/maqet.ron`, MAQET_CONFIG names \
         the file): data and runtime directory, default QEMU binary, stop timeout, log level. \
         Flags win over environment variables, which win over this file.",
    ),
];

/// The environment maqet reads. A test fails when the code reads a
/// `MAQET_` or `XDG_` variable that is not here.
pub(super) const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "MAQET_DATA_DIR",
        "The data directory, unless `--data-dir` is given.",
    ),
    (
        "MAQET_RUNTIME_DIR",
        "The runtime directory, unless `--runtime-dir` is given.",
    ),
    (
        "MAQET_CONFIG",
        "The settings file, unless `--config-dir` is given; it must exist.",
    ),
    (
        "MAQET_LOCK_TIMEOUT_MS",
        "How long to wait for another maqet to release a lock (the store's, or a VM's while \
         it starts or stops), in milliseconds (default 10000).",
    ),
    (
        "XDG_DATA_HOME",
        "The data directory is `$XDG_DATA_HOME/maqet` by default; ignored unless absolute.",
    ),
    (
        "XDG_STATE_HOME",
        "The runtime directory is `$XDG_STATE_HOME/maqet/run` by default; ignored unless \
         absolute.",
    ),
    (
        "XDG_RUNTIME_DIR",
        "A VM with a window (`display: Gtk` or `Sdl`) may use this directory (the display \
         server's sockets); see docs/security.md.",
    ),
    (
        "XAUTHORITY",
        "A VM with a window may read this file (X11 authentication).",
    ),
    (
        "XDG_CONFIG_HOME",
        "The settings file is `$XDG_CONFIG_HOME/maqet/maqet.ron` by default; ignored unless \
         absolute.",
    ),
    (
        "HOME",
        "Where the default directories are when the XDG variables are not set.",
    ),
    (
        "NO_COLOR",
        "When set, error reports have no colour, even on a terminal.",
    ),
    (
        "MAQET_TEST_PANIC_IN",
        "For maqet's own tests, read only by debug builds: `write` makes every store write panic before its commit, `command` makes the command panic. A release build ignores it.",
    ),
];

/// Pages of other programs worth reading.
const OTHERS: &[&str] = &["qemu-system-x86_64", "qemu-img"];

pub(super) fn pages(root: &Node) -> Vec<(String, String)> {
    std::iter::once(root)
        .chain(&root.children)
        .map(|node| (file_name(node), render(root, node)))
        .collect()
}

pub(super) fn page(root: &Node, name: Option<&str>) -> Result<String, String> {
    let Some(name) = name else {
        return Ok(render(root, root));
    };
    let name = name.trim();
    let name = name.strip_suffix(".1").unwrap_or(name);
    let name = name
        .strip_prefix("maqet-")
        .or_else(|| name.strip_prefix("maqet "))
        .unwrap_or(name);
    if name == "maqet" {
        return Ok(render(root, root));
    }
    let mut words = name.split_whitespace();
    let page = words.next().and_then(|w| root.child(w));
    // `qmp keys` is a section of the qmp page.
    let found = page.is_some_and(|page| {
        let mut node = page;
        words.all(|w| match node.child(w) {
            Some(child) => {
                node = child;
                true
            }
            None => false,
        })
    });
    match page {
        Some(page) if found => Ok(render(root, page)),
        _ => Err(format!(
            "there is no manual page `{name}`; the pages are: maqet, {}",
            page_names(root).join(", ")
        )),
    }
}

/// What `maqet man` takes: the commands, each with a page.
pub(super) fn page_names(root: &Node) -> Vec<String> {
    root.children.iter().map(Node::name).collect()
}

fn file_name(node: &Node) -> String {
    format!(
        "{}.1",
        node.path
            .iter()
            .fold("maqet".to_owned(), |a, w| a + "-" + w)
    )
}

fn render(root: &Node, node: &Node) -> String {
    let mut r = Roff::default();
    header(&mut r, node);
    synopsis_section(&mut r, node);
    description(&mut r, node);
    if node.children.is_empty() && !node.positionals.is_empty() {
        r.section("ARGUMENTS");
        for p in &node.positionals {
            positional_item(&mut r, p);
        }
    }
    options(&mut r, node);
    commands(&mut r, node);
    examples(&mut r, node);
    exit_status(&mut r, root, node);
    if node.path.is_empty() {
        files_and_environment(&mut r);
    }
    see_also(&mut r, node);
    r.0
}

fn header(r: &mut Roff, node: &Node) {
    let title = file_stem(node);
    r.request(
        "\\\" Generated from maqet's command-line definition (src/cli.rs) by `maqet man`; \
         scripts/gen-docs rewrites it. Do not edit.",
    );
    let _ = writeln!(
        r.0,
        ".TH {} 1 \"\" \"{}\" \"maqet manual\"",
        escape(&title.to_uppercase()),
        escape(SOURCE)
    );
    // Option names read badly hyphenated, and ragged right is easier on
    // the eye in a terminal.
    r.request("nh");
    r.request("ad l");
    r.section("NAME");
    r.text(&format!(
        "{} \\- {}",
        escape(&title),
        escape(&summary(&node.description))
    ));
}

/// maqet's usage line, or one per verb.
fn synopsis_section(r: &mut Roff, node: &Node) {
    r.section("SYNOPSIS");
    if node.path.is_empty() {
        r.text(&format!(
            "{} {} \\fICOMMAND\\fR [\\fIARGS\\fR]",
            bold("maqet"),
            flags_synopsis(node)
        ));
        return;
    }
    let leaves = node.walk().into_iter().filter(|n| n.children.is_empty());
    for (i, leaf) in leaves.enumerate() {
        if i > 0 {
            r.request("br");
        }
        r.text(&synopsis(leaf));
    }
}

fn description(r: &mut Roff, node: &Node) {
    r.section("DESCRIPTION");
    r.text(&prose(&node.description));
    for note in &node.notes {
        r.request("PP");
        r.text(&prose(note));
    }
}

fn options(r: &mut Roff, node: &Node) {
    if node.flags.is_empty() {
        return;
    }
    r.section("OPTIONS");
    if !node.path.is_empty() {
        let globals: Vec<String> = node.globals.iter().map(|f| bold(f.long)).collect();
        r.text(&format!(
            "The global options ({}) go before or after the command; see {}.",
            globals.join(", "),
            reference("maqet")
        ));
    }
    for flag in &node.flags {
        flag_item(r, flag);
    }
}

/// maqet.1 lists the commands and their pages; a command's page documents
/// its verbs.
fn commands(r: &mut Roff, node: &Node) {
    if node.children.is_empty() {
        return;
    }
    r.section("COMMANDS");
    if !node.path.is_empty() {
        for verb in node.walk().into_iter().skip(1) {
            verb_section(r, verb);
        }
        return;
    }
    for child in &node.children {
        r.request("TP");
        r.text(&bold(&child.name()));
        let mut text = prose(&child.description);
        if !child.children.is_empty() {
            let verbs: Vec<String> = child
                .children
                .iter()
                .filter_map(|v| v.path.last().map(|w| bold(w)))
                .collect();
            let _ = write!(text, " Verbs: {}.", verbs.join(", "));
        }
        let _ = write!(text, " See {}.", reference(&file_stem(child)));
        r.text(&text);
    }
}

/// maqet.1 has its own examples; a command's page has its verbs' too.
fn examples(r: &mut Roff, node: &Node) {
    let examples: Vec<&str> = if node.path.is_empty() {
        node.examples.clone()
    } else {
        node.walk()
            .into_iter()
            .flat_map(|n| n.examples.iter().copied())
            .collect()
    };
    if examples.is_empty() {
        return;
    }
    r.section("EXAMPLES");
    for example in examples {
        r.request("PP");
        r.request("RS 4");
        r.request("nf");
        for line in example.lines() {
            r.text(&escape(line));
        }
        r.request("fi");
        r.request("RE");
    }
}

/// maqet's exit codes (cli.rs's `error_code`s), and a command's own.
fn exit_status(r: &mut Roff, root: &Node, node: &Node) {
    r.section("EXIT STATUS");
    r.request("TP");
    r.text(&bold("0"));
    r.text("success");
    let own = if node.path.is_empty() {
        &[][..]
    } else {
        node.error_codes
    };
    for code in root.error_codes.iter().chain(own) {
        r.request("TP");
        r.text(&bold(&code.code.to_string()));
        r.text(&prose(code.description));
    }
}

fn files_and_environment(r: &mut Roff) {
    r.section("FILES");
    for (path, text) in FILES {
        r.request("TP");
        r.text(&italic(path));
        r.text(&prose(text));
    }
    r.section("ENVIRONMENT");
    for (name, text) in ENVIRONMENT {
        r.request("TP");
        r.text(&bold(name));
        r.text(&prose(text));
    }
}

fn see_also(r: &mut Roff, node: &Node) {
    r.section("SEE ALSO");
    let mut see: Vec<String> = if node.path.is_empty() {
        node.children
            .iter()
            .map(|c| reference(&file_stem(c)))
            .collect()
    } else {
        vec![reference("maqet")]
    };
    see.extend(OTHERS.iter().map(|p| reference(p)));
    r.text(&see.join(", "));
}

/// A verb of a command, on the command's page.
fn verb_section(r: &mut Roff, verb: &Node) {
    let _ = writeln!(r.0, ".SS \"{}\"", escape(&verb.command_line()));
    r.text(&prose(&verb.description));
    for note in &verb.notes {
        r.request("PP");
        r.text(&prose(note));
    }
    if verb.children.is_empty() {
        for p in &verb.positionals {
            positional_item(r, p);
        }
        // --help is on every verb; the OPTIONS section says it once.
        for flag in verb.flags.iter().filter(|f| f.long != "--help") {
            flag_item(r, flag);
        }
    }
}

fn positional_item(r: &mut Roff, p: &PositionalInfo) {
    r.request("TP");
    r.text(&italic(p.name));
    r.text(&prose(p.description));
}

fn flag_item(r: &mut Roff, flag: &FlagInfo) {
    r.request("TP");
    let mut tag = String::new();
    if let Some(c) = flag.short {
        let _ = write!(tag, "{}, ", bold(&format!("-{c}")));
    }
    tag.push_str(&bold(flag.long));
    if let FlagInfoKind::Option { arg_name } = flag.kind {
        let _ = write!(tag, " {}", italic(arg_name));
    }
    r.text(&tag);
    r.text(&prose(flag.description));
}

/// `maqet [GLOBAL OPTIONS] qmp keys VM [KEY...] [--hold-time MS]`.
fn synopsis(node: &Node) -> String {
    let mut s = format!(
        "{} [\\fIGLOBAL OPTIONS\\fR] {}",
        bold("maqet"),
        bold(&node.name())
    );
    for p in &node.positionals {
        let name = italic(p.name);
        let _ = match p.optionality {
            Optionality::Required => write!(s, " {name}"),
            Optionality::Optional => write!(s, " [{name}]"),
            Optionality::Repeating | Optionality::Greedy => write!(s, " [{name}...]"),
        };
    }
    let flags = flags_synopsis(node);
    if !flags.is_empty() {
        s.push(' ');
        s.push_str(&flags);
    }
    s
}

/// The flags of a usage line, `[--timeout SECONDS] [--dry-run]`; not --help.
fn flags_synopsis(node: &Node) -> String {
    let mut parts = Vec::new();
    for flag in node.flags.iter().filter(|f| f.long != "--help") {
        let mut part = match flag.short {
            Some(c) => bold(&format!("-{c}")),
            None => bold(flag.long),
        };
        if let FlagInfoKind::Option { arg_name } = flag.kind {
            let _ = write!(part, " {}", italic(arg_name));
        }
        parts.push(match flag.optionality {
            Optionality::Required => part,
            Optionality::Optional => format!("[{part}]"),
            Optionality::Repeating | Optionality::Greedy => format!("[{part}]..."),
        });
    }
    parts.join(" ")
}

/// `maqet-qmp` for `qmp`.
fn file_stem(node: &Node) -> String {
    file_name(node).trim_end_matches(".1").to_owned()
}

/// `maqet-start(1)`, as man pages refer to each other.
fn reference(page: &str) -> String {
    format!("{}(1)", bold(page))
}

/// A description as the NAME line wants it: no final period, and a lower
/// case first letter unless it starts an acronym (`QEMU`).
pub(super) fn summary(description: &str) -> String {
    let text = description.trim_end_matches('.');
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if second.is_lowercase() || second == ' ' => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text.to_owned(),
    }
}

fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", escape(text))
}

fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", escape(text))
}

/// Prose from cli.rs: `code` spans set in bold, the rest escaped.
pub(super) fn prose(text: &str) -> String {
    let text = super::one_line(text);
    let parts: Vec<&str> = text.split('`').collect();
    // An odd number of backticks: no spans, print them as they are.
    if parts.len().is_multiple_of(2) {
        return escape(&text);
    }
    parts
        .iter()
        .enumerate()
        .map(
            |(i, part)| {
                if i % 2 == 1 { bold(part) } else { escape(part) }
            },
        )
        .collect()
}

/// Text for a roff text line: the characters roff would read as something
/// else written as escapes. A line's leading `.` is guarded in [`Roff::text`].
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            // ASCII quotes, not the typographic ones groff would print.
            '\'' => out.push_str("\\(aq"),
            '`' => out.push_str("\\(ga"),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "\\[u{:04X}]", u32::from(c));
            }
        }
    }
    out
}

/// A roff document being written.
#[derive(Default)]
pub(super) struct Roff(pub(super) String);

impl Roff {
    fn request(&mut self, request: &str) {
        let _ = writeln!(self.0, ".{request}");
    }

    fn section(&mut self, title: &str) {
        if title.contains(' ') {
            let _ = writeln!(self.0, ".SH \"{title}\"");
        } else {
            let _ = writeln!(self.0, ".SH {title}");
        }
    }

    /// Escaped text, one or more lines; a line that would start with a
    /// control character gets a zero-width `\&` first.
    pub(super) fn text(&mut self, text: &str) {
        for line in text.lines() {
            if line.starts_with(['.', '\'']) {
                self.0.push_str("\\&");
            }
            self.0.push_str(line);
            self.0.push('\n');
        }
    }
}
