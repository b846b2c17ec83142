//! Reading RON config files into [`Layer`]s, with errors that point at the
//! offending text.

use std::cell::RefCell;
use std::ffi::OsStr;

use camino::{Utf8Path, Utf8PathBuf};
use miette::{NamedSource, SourceSpan};
use ron::extensions::Extensions;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::checks::check_layer;
use super::schema::Layer;
use crate::error::{ConfigError, ConfigFault, Error, Result};
use crate::paths::{PathError, PathPolicy};

/// What a path in a config file is resolved against while that file is being
/// parsed. Paths are checked as they are read, so that an error carries the
/// position ron reports for the value.
struct Context {
    base: Utf8PathBuf,
    policy: PathPolicy,
    /// The filter's verdict on the last path it refused: ron keeps only our
    /// message, and the exit code depends on the kind of error.
    failure: Option<PathError>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Clears the parse context however parsing ends.
struct ContextGuard;

impl ContextGuard {
    fn set(ctx: Context) -> ContextGuard {
        CONTEXT.with_borrow_mut(|slot| *slot = Some(ctx));
        ContextGuard
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with_borrow_mut(|slot| *slot = None);
    }
}

/// A path a user wrote in a config file, checked by the path filter.
///
/// While a config file is parsed it is expanded, made absolute and checked;
/// read back from the store (no parse context) it is taken as stored, since
/// it was checked when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UserPath(Utf8PathBuf);

impl UserPath {
    pub fn as_path(&self) -> &Utf8Path {
        &self.0
    }

    /// A path already checked by the filter.
    pub fn checked(path: Utf8PathBuf) -> UserPath {
        UserPath(path)
    }
}

impl<'de> Deserialize<'de> for UserPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CONTEXT.with_borrow_mut(|slot| match slot {
            None => Ok(UserPath(Utf8PathBuf::from(text))),
            Some(ctx) => match ctx.policy.check_vm(OsStr::new(&text), &ctx.base) {
                Ok(path) => Ok(UserPath(path)),
                Err(err) => {
                    let message = err.to_string();
                    ctx.failure = Some(err);
                    Err(de::Error::custom(message))
                }
            },
        })
    }
}

/// An SSH public key for the guest account (`cloud_init`): an OpenSSH key
/// line as written, or a file of them. A file goes through the path
/// filter, but not the one for files a VM opens: maqet reads it, and only
/// the public keys in it reach the guest (`~/.ssh/id_ed25519.pub` is
/// fine). Stored as its text: a key line, or an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizedKey {
    Key(String),
    File(UserPath),
}

impl Serialize for AuthorizedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AuthorizedKey::Key(key) => s.serialize_str(key),
            AuthorizedKey::File(path) => s.serialize_str(path.as_path().as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for AuthorizedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if crate::cloud_init::looks_like_key(&text) {
            return crate::cloud_init::parse_key(&text)
                .map(|_| AuthorizedKey::Key(text.trim().to_owned()))
                .map_err(de::Error::custom);
        }
        CONTEXT.with_borrow_mut(|slot| match slot {
            None => Ok(AuthorizedKey::File(UserPath(Utf8PathBuf::from(text)))),
            Some(ctx) => match ctx.policy.check(OsStr::new(&text), &ctx.base) {
                Ok(path) => Ok(AuthorizedKey::File(UserPath(path))),
                Err(err) => {
                    let message = err.to_string();
                    ctx.failure = Some(err);
                    Err(de::Error::custom(message))
                }
            },
        })
    }
}

/// The QEMU program: a bare name looked up in PATH when the VM starts, or a
/// path (anything with a `/`), made absolute against the config's directory.
/// Not put through the filter: QEMU itself lives in /usr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Program(String);

impl Program {
    pub fn new(text: &str) -> Program {
        Program(text.to_owned())
    }

    /// Interpret `text` as written in a file in `base` (or on the command line
    /// in the working directory).
    pub fn resolve(text: &str, base: &Utf8Path) -> std::result::Result<Program, String> {
        if text.is_empty() {
            return Err("the QEMU binary is empty: give a program name or path".into());
        }
        if text.contains('\0') {
            return Err(
                "the QEMU binary contains a NUL character, which no program name can hold".into(),
            );
        }
        if !text.contains('/') {
            return Ok(Program(text.to_owned()));
        }
        let expanded = match text.strip_prefix("~/") {
            Some(rest) => {
                let home = std::env::var("HOME")
                    .map_err(|_| format!("cannot expand `{text}`: $HOME is not set"))?;
                Utf8PathBuf::from(home).join(rest)
            }
            None => Utf8PathBuf::from(text),
        };
        // Lexically tidy (`./qemu` → `qemu`), but leave `..` alone: it is
        // only meaningful after symlinks, which are resolved at start.
        let joined = base.join(expanded);
        let tidy: Utf8PathBuf = joined
            .components()
            .filter(|c| !matches!(c, camino::Utf8Component::CurDir))
            .collect();
        Ok(Program(tidy.into_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Program {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CONTEXT.with_borrow(|slot| match slot {
            None => Ok(Program(text)),
            Some(ctx) => Program::resolve(&text, &ctx.base).map_err(de::Error::custom),
        })
    }
}

/// The largest config file maqet reads: a VM config is a few lines, and an
/// error quoting a huge file would flood the terminal.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A parsed config file and where it came from.
#[derive(Debug)]
pub struct LoadedFile {
    pub path: Utf8PathBuf,
    pub layer: Layer,
}

/// Read and check one config file. `raw` is the path as the user gave it,
/// relative to `cwd`.
pub fn load_file(raw: &OsStr, cwd: &Utf8Path, policy: &PathPolicy) -> Result<LoadedFile> {
    let path = policy.check(raw, cwd).map_err(Error::path)?;
    let src = read_text(&path, "config file")?;
    // Editors on some systems start UTF-8 files with a byte-order mark.
    let src = src
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(src);
    let shown = Utf8PathBuf::from(raw.to_string_lossy().into_owned());
    let layer = parse(&src, &path, policy).map_err(|e| e.into_error(&shown, &src))?;
    check_layer(&layer, &src).map_err(|e| e.into_error(&shown, &src))?;
    Ok(LoadedFile { path, layer })
}

/// The text of a config or settings file (`what` says which): a regular
/// file only, and at most [`MAX_CONFIG_BYTES`] of it.
///
/// The file is opened first and the open descriptor is checked, so what is
/// checked is what is read. A FIFO with no writer would block `open` and a
/// device like /dev/zero never ends: O_NONBLOCK makes the open return at
/// once, and anything but a regular file is refused before a byte is read.
/// The size is enforced by the read itself, not by `st_size`, which a file
/// that grows meanwhile would outrun.
pub fn read_text(path: &Utf8Path, what: &'static str) -> Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let unreadable = |cause| Error::ConfigUnreadable {
        path: path.to_owned(),
        cause,
    };
    // std opens with O_CLOEXEC already; O_NOCTTY keeps a terminal device
    // from becoming maqet's controlling terminal.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(cause) => {
            // A socket cannot be opened at all (ENXIO): say what it is.
            if let Ok(meta) = std::fs::metadata(path)
                && !meta.is_file()
            {
                return Err(Error::not_a_file(what, path, meta.file_type()));
            }
            return Err(unreadable(cause));
        }
    };
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(Error::not_a_file(what, path, meta.file_type()));
    }
    let too_big = |size: String| {
        Error::invalid(
            format!(
                "{what} {path} is {size} bytes; maqet reads configs of up to {} KiB",
                MAX_CONFIG_BYTES / 1024
            ),
            "a VM config is a few lines of RON; check that this is the file you meant",
        )
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big(meta.len().to_string()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big(format!("more than {MAX_CONFIG_BYTES}")));
    }
    String::from_utf8(bytes).map_err(|_| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

fn parse(src: &str, path: &Utf8Path, policy: &PathPolicy) -> std::result::Result<Layer, Problem> {
    parse_as(src, path, policy)
}

/// Parse any RON document of maqet's (a VM config, the settings file) with
/// the same options and errors that point at the text.
pub fn parse_file<T: serde::de::DeserializeOwned>(
    src: &str,
    path: &Utf8Path,
    shown: &Utf8Path,
    policy: &PathPolicy,
) -> Result<T> {
    parse_as(src, path, policy).map_err(|e| e.into_error(shown, src))
}

fn parse_as<T: serde::de::DeserializeOwned>(
    src: &str,
    path: &Utf8Path,
    policy: &PathPolicy,
) -> std::result::Result<T, Problem> {
    let base = path.parent().unwrap_or(Utf8Path::new("/")).to_owned();
    let _guard = ContextGuard::set(Context {
        base,
        policy: policy.clone(),
        failure: None,
    });
    let options = ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES);
    options.from_str::<T>(src).map_err(|err| {
        let failure = CONTEXT.with_borrow_mut(|slot| slot.as_mut().and_then(|c| c.failure.take()));
        let span = span_of_ron(src, &err.span);
        let (message, label, help, fault) = match &failure {
            Some(path_err) => (
                err.code.to_string(),
                "refused here",
                path_err.help(),
                if path_err.is_refusal() {
                    ConfigFault::PathRefused
                } else {
                    ConfigFault::Path
                },
            ),
            None => {
                let (message, help) = describe(&err.code);
                (message, "here", help, ConfigFault::Invalid)
            }
        };
        Problem {
            message,
            span,
            label: label.into(),
            help,
            fault,
        }
    })
}

/// ron's message for the error, in the user's words rather than our type
/// names, and a hint that says what to write instead.
fn describe(code: &ron::Error) -> (String, String) {
    match code {
        // `Cdrom` has no `readonly`: say why rather than just "unknown".
        ron::Error::NoSuchStructField { found, outer, .. }
            if found == "readonly" && outer.as_deref() == Some("Cdrom") =>
        {
            (
                "unknown field `readonly`: a cdrom is always read-only".into(),
                "remove `readonly` from the Cdrom; use a `Raw` drive for a disk image that may \
                 be written"
                    .into(),
            )
        }
        ron::Error::NoSuchStructField {
            expected, found, ..
        } => (
            format!("unknown field `{found}`"),
            match closest(found, expected) {
                Some(near) => format!(
                    "did you mean `{near}`? Fields allowed here: {}",
                    expected.join(", ")
                ),
                None => format!("fields allowed here: {}", expected.join(", ")),
            },
        ),
        ron::Error::NoSuchEnumVariant {
            expected, found, ..
        } => (
            format!("`{found}` is not one of the choices here"),
            match closest(found, expected) {
                Some(near) => format!("did you mean `{near}`? Choices: {}", expected.join(", ")),
                None => format!("choices: {}", expected.join(", ")),
            },
        ),
        ron::Error::MissingStructField { field, .. } => (
            format!("missing field `{field}`"),
            format!("add `{field}: ...` here"),
        ),
        ron::Error::DuplicateStructField { field, .. } => (
            format!("field `{field}` is given twice"),
            format!("remove one of the `{field}` fields"),
        ),
        other => (
            other.to_string(),
            "see docs/config.md for the format, and examples/full.ron for every field".into(),
        ),
    }
}

/// The expected word nearest to a misspelling, if one is near enough.
fn closest<'a>(found: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|e| (edit_distance(found, e), *e))
        .filter(|(d, e)| *d <= (e.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A config error before it is tied to its file.
pub(super) struct Problem {
    message: String,
    span: SourceSpan,
    label: String,
    help: String,
    fault: ConfigFault,
}

impl Problem {
    pub(super) fn at(
        src: &str,
        needle: &str,
        nth: usize,
        message: String,
        help: String,
    ) -> Problem {
        Problem {
            message,
            span: span_of_text(src, needle, nth),
            label: "here".into(),
            help,
            fault: ConfigFault::Invalid,
        }
    }

    fn into_error(self, shown: &Utf8Path, src: &str) -> Error {
        let (excerpt, span) = excerpt(src, self.span);
        Error::Config(Box::new(ConfigError {
            file: shown.to_owned(),
            message: shorten(&self.message, MAX_MESSAGE_CHARS),
            source_code: NamedSource::new(shown.as_str(), excerpt),
            span,
            label: self.label,
            help: shorten(&self.help, MAX_MESSAGE_CHARS),
            fault: self.fault,
        }))
    }
}

/// Errors quote what they found; a token of a megabyte must not become a
/// megabyte of error.
const MAX_MESSAGE_CHARS: usize = 300;
/// The longest source line shown whole under an error.
const MAX_LINE_BYTES: usize = 400;

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The source to show under an error: the whole file when its lines are of
/// a sane length, else a window around the span (with the span moved into
/// it), so a one-line junk file does not print itself whole.
fn excerpt(src: &str, span: SourceSpan) -> (String, SourceSpan) {
    let at = span.offset().min(src.len());
    let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[at..].find('\n').map_or(src.len(), |i| at + i);
    if line_end - line_start <= MAX_LINE_BYTES {
        return (src.to_owned(), span);
    }
    let floor = |mut i: usize| {
        while !src.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(at.saturating_sub(MAX_LINE_BYTES / 2).max(line_start));
    let end = floor((at + MAX_LINE_BYTES / 2).min(line_end));
    let len = span.len().min(end.saturating_sub(at));
    (
        src[start..end].to_owned(),
        SourceSpan::new((at - start).into(), len),
    )
}

/// ron positions are 1-based lines and columns counted in characters.
fn span_of_ron(src: &str, span: &ron::error::Span) -> SourceSpan {
    let mut start = offset_of(src, span.start.line, span.start.col);
    let end = offset_of(src, span.end.line, span.end.col).max(start);
    // For a string value ron's span starts after the opening quote but ends
    // after the closing one; widen it to cover the whole literal.
    if start > 0 && src.as_bytes()[start - 1] == b'"' {
        start -= 1;
    }
    let len = (end - start).max(usize::from(start < src.len()));
    SourceSpan::new(start.into(), len)
}

fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let line_start: usize = src
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &src[line_start.min(src.len())..];
    let in_line: usize = rest
        .chars()
        .take(col.saturating_sub(1))
        .take_while(|&c| c != '\n')
        .map(char::len_utf8)
        .sum();
    (line_start + in_line).min(src.len())
}

/// The `nth` (0-based) occurrence of `needle` in the file, or the whole file's
/// start when it cannot be found (the message still says what is wrong).
fn span_of_text(src: &str, needle: &str, nth: usize) -> SourceSpan {
    match src.match_indices(needle).nth(nth) {
        Some((at, m)) => SourceSpan::new(at.into(), m.len()),
        None => SourceSpan::new(0.into(), 0),
    }
}
