use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::cli::{self, QmpVerb, SnapshotAction};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Every file the generators own: `completions/*` and `man/*`.
fn generated() -> Vec<(PathBuf, String)> {
    let repo = Path::new(REPO);
    let mut files: Vec<(PathBuf, String)> = Shell::ALL
        .iter()
        .map(|&shell| {
            (
                repo.join("completions").join(shell.file_name()),
                completion(shell),
            )
        })
        .collect();
    files.extend(
        man_pages()
            .into_iter()
            .map(|(name, text)| (repo.join("man").join(name), text)),
    );
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(REPO)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The committed output is what the generators print now. With
/// `MAQET_UPDATE_DOCS=1` (scripts/gen-docs) the test writes it instead,
/// and removes pages of commands that are gone.
#[test]
fn committed_files_are_fresh() {
    let update = std::env::var_os("MAQET_UPDATE_DOCS").is_some_and(|v| v == "1");
    let files = generated();
    let mut stale = Vec::new();
    for dir in ["completions", "man"] {
        let dir = Path::new(REPO).join(dir);
        if update {
            std::fs::create_dir_all(&dir).expect("create the output directory");
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.expect("read the output directory").path();
            if !files.iter().any(|(p, _)| *p == path) {
                if update {
                    std::fs::remove_file(&path).expect("remove a stale file");
                } else {
                    stale.push(format!("{} is generated no more", relative(&path)));
                }
            }
        }
    }
    for (path, text) in &files {
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if update {
            std::fs::write(path, text).expect("write a generated file");
        } else {
            stale.push(format!("{} is stale or missing", relative(path)));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nrun scripts/gen-docs to regenerate completions/ and man/",
        stale.join("\n")
    );
}

#[test]
fn shells_parse_by_name() {
    for shell in Shell::ALL {
        assert_eq!(shell.as_str().parse(), Ok(shell));
        assert_eq!(shell.to_string(), shell.as_str());
    }
    assert_eq!(
        "tcsh".parse::<Shell>(),
        Err("`tcsh` is not a shell maqet completes: use bash, zsh or fish".to_owned())
    );
}

#[test]
fn man_pages_are_maqet_1_and_one_per_command() {
    let names: Vec<String> = man_pages().into_iter().map(|(name, _)| name).collect();
    let mut want = vec!["maqet.1".to_owned()];
    want.extend(
        Node::root()
            .children
            .iter()
            .map(|c| format!("maqet-{}.1", c.name())),
    );
    assert_eq!(names, want);
    assert!(names.contains(&"maqet-qmp.1".to_owned()));
    assert!(names.contains(&"maqet-start.1".to_owned()));
}

#[test]
fn man_finds_a_page_by_command_or_verb() {
    let pages = man_pages();
    let page = |file: &str| {
        pages
            .iter()
            .find(|(name, _)| name == file)
            .map(|(_, text)| text.clone())
            .expect("page exists")
    };
    assert_eq!(man(None), Ok(page("maqet.1")));
    assert_eq!(man(Some("maqet")), Ok(page("maqet.1")));
    assert_eq!(man(Some("start")), Ok(page("maqet-start.1")));
    assert_eq!(man(Some("maqet-start")), Ok(page("maqet-start.1")));
    assert_eq!(man(Some("maqet-start.1")), Ok(page("maqet-start.1")));
    assert_eq!(man(Some("qmp")), Ok(page("maqet-qmp.1")));
    assert_eq!(man(Some("qmp keys")), Ok(page("maqet-qmp.1")));
    assert_eq!(man(Some("storage orphans")), Ok(page("maqet-storage.1")));
}

#[test]
fn man_names_the_pages_there_are_when_there_is_none() {
    let err = man(Some("strat")).expect_err("no such page");
    assert!(
        err.starts_with("there is no manual page `strat`; the pages are: maqet, add, apply, ls,"),
        "{err}"
    );
    assert!(err.contains(", qmp, "), "{err}");
    assert!(man(Some("qmp bogus")).is_err());
    assert!(man(Some("start web")).is_err());
}

#[test]
fn man_pages_carry_the_cargo_version() {
    for (name, text) in man_pages() {
        let th = text
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{name} has no .TH"));
        let version = env!("CARGO_PKG_VERSION").replace('-', "\\-");
        assert!(th.contains(&format!("\"maqet {version}\"")), "{name}: {th}");
    }
}

#[test]
fn maqet_1_has_every_section() {
    let text = man(None).expect("maqet.1");
    let sections: Vec<&str> = text.lines().filter(|l| l.starts_with(".SH ")).collect();
    assert_eq!(
        sections,
        [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH COMMANDS",
            ".SH EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
            ".SH ENVIRONMENT",
            ".SH \"SEE ALSO\"",
        ]
    );
    assert!(text.contains("\n.TP\n\\fB3\\fR\nnot found, or invalid configuration\n"));
    assert!(text.contains("\n.TP\n\\fB130\\fR\ninterrupted\n"));
    for name in [
        "MAQET_DATA_DIR",
        "MAQET_RUNTIME_DIR",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "HOME",
        "NO_COLOR",
        "MAQET_LOCK_TIMEOUT_MS",
    ] {
        let entry = format!("\n.TP\n\\fB{}\\fR\n", name.replace('-', "\\-"));
        assert!(text.contains(&entry), "ENVIRONMENT lacks {name}");
    }
}

#[test]
fn a_command_page_documents_every_argument_and_option() {
    let root = Node::root();
    for node in root.walk().into_iter().skip(1) {
        let page = man(Some(&node.name())).expect("page");
        let start = format!("\\fB{}", node.name().replace('-', "\\-"));
        assert!(page.contains(&start), "{}: no synopsis", node.name());
        for p in &node.positionals {
            assert!(
                page.contains(&format!(".TP\n\\fI{}\\fR\n", p.name)),
                "{}: {} undocumented",
                node.name(),
                p.name
            );
        }
        for flag in node.flags.iter().filter(|f| f.long != "--help") {
            let long = flag.long.replace('-', "\\-");
            assert!(
                page.contains(&format!("\n\\fB{long}\\fR")),
                "{}: {} undocumented",
                node.name(),
                flag.long
            );
        }
    }
}

/// The environment the code reads is the environment the man page lists.
#[test]
fn every_variable_the_code_reads_is_documented() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("read src").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "docgen") {
                    sources(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                // Test code, whose variables (skips.rs: `MAQET_REQUIRE_*`)
                // are the test suite's, not maqet's.
                && path
                    .file_name()
                    .is_some_and(|n| n != "tests.rs" && n != "docgen.rs" && n != "skips.rs")
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&Path::new(REPO).join("src"), &mut files);
    let mut undocumented = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for prefix in ["\"MAQET_", "\"XDG_"] {
            for (at, _) in text.match_indices(prefix) {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                if !man::ENVIRONMENT.iter().any(|(n, _)| *n == name) {
                    undocumented.push(format!("{name} ({})", file.display()));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "add these to ENVIRONMENT in src/docgen/man.rs: {undocumented:?}"
    );
}

#[test]
fn roff_escapes_what_roff_would_read_as_markup() {
    assert_eq!(
        man::escape(r"a-b \n 'x' `y`"),
        r"a\-b \en \(aqx\(aq \(gay\(ga"
    );
    assert_eq!(man::escape("1.5 s — ok"), r"1.5 s \[u2014] ok");
    assert_eq!(
        man::prose("use `maqet ls --json`, not `x`"),
        r"use \fBmaqet ls \-\-json\fR, not \fBx\fR"
    );
    assert_eq!(man::prose("a lone ` stays"), r"a lone \(ga stays");
    let mut roff = man::Roff::default();
    roff.text(".hidden\n'quoted\nplain");
    assert_eq!(roff.0, "\\&.hidden\n\\&'quoted\nplain\n");
}

#[test]
fn name_lines_start_lower_case_unless_an_acronym_does() {
    assert_eq!(man::summary("List VMs."), "list VMs");
    assert_eq!(man::summary("QEMU things."), "QEMU things");
    assert_eq!(man::summary("A thing."), "a thing");
}

/// `Shorthand` says what `cli::parse` does.
#[test]
fn shorthands_match_the_parser() {
    let parse = |words: &[&str]| {
        let args = words.iter().map(OsString::from).collect();
        match cli::parse(args) {
            Ok(cli) => cli.command.expect("a command"),
            Err(_) => panic!("{words:?} does not parse"),
        }
    };
    let root = Node::root();
    let verbs = |group: &str| -> Vec<&str> {
        root.child(group)
            .expect("group")
            .children
            .iter()
            .filter_map(|c| c.path.last().copied())
            .collect()
    };
    assert_eq!(
        Shorthand::of(&["qmp"]),
        Some(Shorthand::ImpliedVerb("command"))
    );
    assert_eq!(verbs("qmp"), cli::QMP_VERBS);
    assert!(matches!(
        parse(&["qmp", "web", "query-status"]),
        cli::Command::Qmp(cli::QmpArgs { verb: QmpVerb::Command(a) }) if a.vm == "web"
    ));
    assert_eq!(Shorthand::of(&["snapshot"]), Some(Shorthand::VmBeforeVerb));
    assert_eq!(verbs("snapshot"), cli::SNAPSHOT_VERBS);
    assert!(matches!(
        parse(&["snapshot", "web", "list", "root"]),
        cli::Command::Snapshot(cli::SnapshotArgs { action: SnapshotAction::List(a) })
            if a.vm == "web" && a.drive == "root"
    ));
    for node in root.walk() {
        if node.path != ["qmp"] && node.path != ["snapshot"] {
            assert_eq!(Shorthand::of(&node.path), None);
        }
    }
}

/// The words offered for an option are words the option takes.
#[test]
fn offered_words_parse() {
    let root = Node::root();
    for node in root.walk() {
        let args = node
            .options()
            .map(|(_, arg)| arg)
            .chain(node.positionals.iter().map(|p| p.name));
        for arg in args {
            let Value::Words(words) = Value::of(&root, &node.path, arg) else {
                continue;
            };
            assert!(!words.is_empty());
            for word in words {
                let ok = match arg {
                    "STATE" => word.parse::<crate::vm::Status>().is_ok(),
                    "FORMAT" if node.path == ["qmp", "disk-add"] => {
                        word.parse::<crate::config::ImageFormat>().is_ok()
                    }
                    "FORMAT" => word.parse::<crate::commands::qmp::ImageFormat>().is_ok(),
                    _ => word.parse::<Shell>().is_ok() || man(Some(&word)).is_ok(),
                };
                assert!(ok, "{} {arg}: {word}", node.name());
            }
        }
    }
}

/// `MAQET_REQUIRE_TOOLS=1` (as in CI) turns a missing shell or groff from a
/// loud skip into a failure.
fn have(tool: &str, test: &str) -> bool {
    crate::skips::needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        crate::skips::runs(tool),
        &format!("{tool} is not installed"),
    )
}

#[test]
fn man_pages_render_without_warnings() {
    if !have("groff", "man_pages_render_without_warnings") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in man_pages() {
        let path = dir.path().join(&name);
        std::fs::write(&path, text).expect("write the page");
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&path)
            .output()
            .expect("run groff");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{name}: {stderr}"
        );
    }
}

/// A `maqet` for the completion scripts to call: it records its arguments
/// and prints two VM names.
struct FakeMaqet {
    dir: tempfile::TempDir,
}

impl FakeMaqet {
    fn new() -> FakeMaqet {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("maqet");
        std::fs::write(
            &bin,
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/argv\"\nprintf 'alpha\\nbeta\\n'\n",
        )
        .expect("write the fake maqet");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the fake maqet");
        std::fs::create_dir(dir.path().join("files")).expect("mkdir");
        for file in ["vm.ron", "base.ron", "notes.txt"] {
            std::fs::write(dir.path().join("files").join(file), "")
                .expect("write a file to complete");
        }
        FakeMaqet { dir }
    }

    fn path_var(&self) -> OsString {
        let mut path = self.dir.path().as_os_str().to_owned();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        path
    }

    /// What the script last ran `maqet` with.
    fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("argv"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }
}

/// COMP_WORDS as readline fills them: split at blanks, and `=` and `:`
/// (in COMP_WORDBREAKS) as words of their own.
fn comp_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    for token in line.split_whitespace() {
        let mut word = String::new();
        let mut breaks = String::new();
        for c in token.chars() {
            if matches!(c, '=' | ':') {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                breaks.push(c);
            } else {
                if !breaks.is_empty() {
                    words.push(std::mem::take(&mut breaks));
                }
                word.push(c);
            }
        }
        words.extend([word, breaks].into_iter().filter(|w| !w.is_empty()));
    }
    if line.ends_with(' ') {
        words.push(String::new());
    }
    words
}

/// What bash completes at the end of `line`, sorted, with the generated
/// script sourced and `fake` first in PATH.
fn bash_complete(fake: &FakeMaqet, line: &str) -> Vec<String> {
    let words = comp_words(line);
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let program = format!(
        "source \"$SCRIPT\"\n\
         COMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         COMP_WORDS=({words})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
         _maqet\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" ")
    );
    let script = fake.dir.path().join("maqet.bash");
    std::fs::write(&script, completion(Shell::Bash)).expect("write the script");
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .env("SCRIPT", &script)
        .env("PATH", fake.path_var())
        .env("HOME", "/home/someone")
        .current_dir(fake.files())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    got.sort();
    got
}

#[test]
fn comp_words_split_like_readline() {
    assert_eq!(comp_words("maqet st"), ["maqet", "st"]);
    assert_eq!(
        comp_words("maqet --wait-for port:22 "),
        ["maqet", "--wait-for", "port", ":", "22", ""]
    );
    assert_eq!(comp_words("a k=v:"), ["a", "k", "=", "v", ":"]);
}

#[test]
fn bash_completes_commands_verbs_and_options() {
    if !have("bash", "bash_completes_commands_verbs_and_options") {
        return;
    }
    let fake = FakeMaqet::new();
    assert_eq!(
        bash_complete(&fake, "maqet st"),
        ["start", "status", "stop", "storage"]
    );
    assert_eq!(bash_complete(&fake, "maqet qmp k"), ["keys"]);
    assert_eq!(
        bash_complete(&fake, "maqet storage "),
        ["orphans", "verify"]
    );
    // The command's options, and the global options, which work after it too.
    assert_eq!(
        bash_complete(&fake, "maqet --data-dir /tmp stop --"),
        [
            "--config-dir",
            "--data-dir",
            "--force",
            "--help",
            "--json",
            "--log-file",
            "--runtime-dir",
            "--timeout",
            "--verbose"
        ]
    );
    assert_eq!(
        bash_complete(&fake, "maqet ls --status "),
        ["crashed", "created", "running", "starting", "stopped"]
    );
    assert_eq!(
        bash_complete(&fake, "maqet qmp screendump alpha x --format p"),
        ["png", "ppm"]
    );
    assert_eq!(bash_complete(&fake, "maqet start --js"), ["--json"]);
    // --version is maqet's alone.
    assert_eq!(
        bash_complete(&fake, "maqet start --vers"),
        Vec::<String>::new()
    );
    assert_eq!(bash_complete(&fake, "maqet --js"), ["--json"]);
    // An unknown command: nothing to offer.
    assert_eq!(bash_complete(&fake, "maqet strat "), Vec::<String>::new());
}

/// Every option of every command, and the global options, are offered
/// after `--`-less `-`.
#[test]
fn bash_offers_each_commands_own_options() {
    if !have("bash", "bash_offers_each_commands_own_options") {
        return;
    }
    let fake = FakeMaqet::new();
    for node in Node::root().walk() {
        let mut want: Vec<String> = node
            .all_flags()
            .flat_map(|f| {
                f.short
                    .map(|c| format!("-{c}"))
                    .into_iter()
                    .chain([f.long.to_owned()])
            })
            .collect();
        want.sort();
        let line = format!("{} -", node.command_line());
        assert_eq!(bash_complete(&fake, &line), want, "{line}");
    }
}

#[test]
fn bash_completes_vm_names_from_the_store_named_before_the_command() {
    if !have(
        "bash",
        "bash_completes_vm_names_from_the_store_named_before_the_command",
    ) {
        return;
    }
    let fake = FakeMaqet::new();
    assert_eq!(bash_complete(&fake, "maqet start "), ["alpha", "beta"]);
    assert_eq!(fake.argv(), ["ls", "--names"]);
    assert_eq!(bash_complete(&fake, "maqet start a"), ["alpha"]);
    assert_eq!(
        bash_complete(
            &fake,
            "maqet -v --data-dir ~/vms --log-file x.log --runtime-dir /run/m --config-dir c rm "
        ),
        ["alpha", "beta"]
    );
    assert_eq!(
        fake.argv(),
        [
            "--data-dir",
            "/home/someone/vms",
            "--runtime-dir",
            "/run/m",
            "--config-dir",
            "c",
            "ls",
            "--names"
        ]
    );
    // An option's value is not a positional, even split at `:` by readline.
    assert_eq!(
        bash_complete(&fake, "maqet start --wait-for port:22 --timeout 9 "),
        ["alpha", "beta"]
    );
    assert_eq!(
        bash_complete(&fake, "maqet start alpha "),
        Vec::<String>::new()
    );
    // qmp and snapshot take the VM before the verb too.
    assert_eq!(
        bash_complete(&fake, "maqet qmp "),
        [
            "alpha",
            "beta",
            "command",
            "device-add",
            "device-del",
            "disk-add",
            "events",
            "keys",
            "pause",
            "resume",
            "screendump",
            "type"
        ]
    );
    assert_eq!(
        bash_complete(&fake, "maqet qmp alpha "),
        Vec::<String>::new()
    );
    assert_eq!(
        bash_complete(&fake, "maqet snapshot alpha "),
        ["create", "delete", "list", "load"]
    );
    assert_eq!(
        bash_complete(&fake, "maqet snapshot list "),
        ["alpha", "beta"]
    );
    assert_eq!(
        bash_complete(&fake, "maqet snapshot alpha list "),
        Vec::<String>::new()
    );
    assert_eq!(
        bash_complete(&fake, "maqet disk create "),
        ["alpha", "beta"]
    );
}

#[test]
fn bash_completes_file_names_for_configs_and_paths() {
    if !have("bash", "bash_completes_file_names_for_configs_and_paths") {
        return;
    }
    let fake = FakeMaqet::new();
    let all = ["base.ron", "notes.txt", "vm.ron"];
    assert_eq!(bash_complete(&fake, "maqet add "), all);
    assert_eq!(bash_complete(&fake, "maqet add vm.ron "), all);
    assert_eq!(bash_complete(&fake, "maqet apply alpha b"), ["base.ron"]);
    assert_eq!(bash_complete(&fake, "maqet --log-file n"), ["notes.txt"]);
    assert_eq!(
        bash_complete(&fake, "maqet qmp screendump alpha v"),
        ["vm.ron"]
    );
    // Directories only, for a directory.
    std::fs::create_dir(fake.files().join("store")).expect("mkdir");
    assert_eq!(bash_complete(&fake, "maqet --data-dir s"), ["store"]);
}

#[test]
fn zsh_script_parses() {
    if !have("zsh", "zsh_script_parses") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("_maqet");
    std::fs::write(&path, completion(Shell::Zsh)).expect("write the script");
    let out = Command::new("zsh")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("run zsh");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What fish completes for `line`, candidates only, sorted.
fn fish_complete(fake: &FakeMaqet, line: &str) -> Vec<String> {
    let script = fake.dir.path().join("maqet.fish");
    std::fs::write(&script, completion(Shell::Fish)).expect("write the script");
    let out = Command::new("fish")
        .args(["--no-config", "-c"])
        .arg("source $SCRIPT; complete -C $LINE")
        .env("SCRIPT", &script)
        .env("LINE", line)
        .env("PATH", fake.path_var())
        .env("HOME", "/home/someone")
        .current_dir(fake.files())
        .output()
        .expect("run fish");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect();
    got.sort();
    got
}

#[test]
fn fish_script_parses_and_completes() {
    if !have("fish", "fish_script_parses_and_completes") {
        return;
    }
    let fake = FakeMaqet::new();
    let script = fake.dir.path().join("check.fish");
    std::fs::write(&script, completion(Shell::Fish)).expect("write the script");
    let parsed = Command::new("fish")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("run fish");
    assert!(
        parsed.status.success() && parsed.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(
        fish_complete(&fake, "maqet st"),
        ["start", "status", "stop", "storage"]
    );
    assert_eq!(fish_complete(&fake, "maqet qmp k"), ["keys"]);
    assert_eq!(
        fish_complete(&fake, "maqet --data-dir ~/vms start "),
        ["alpha", "beta"]
    );
    assert_eq!(
        fake.argv(),
        ["--data-dir", "/home/someone/vms", "ls", "--names"]
    );
    assert_eq!(
        fish_complete(&fake, "maqet snapshot alpha "),
        ["create", "delete", "list", "load"]
    );
    assert_eq!(
        fish_complete(&fake, "maqet stop --"),
        [
            "--config-dir",
            "--data-dir",
            "--force",
            "--help",
            "--json",
            "--log-file",
            "--runtime-dir",
            "--timeout",
            "--verbose"
        ]
    );
    // A --data-dir after the command picks the store too.
    assert_eq!(
        fish_complete(&fake, "maqet start --data-dir ~/vms "),
        ["alpha", "beta"]
    );
    assert_eq!(
        fake.argv(),
        ["--data-dir", "/home/someone/vms", "ls", "--names"]
    );
    assert_eq!(fish_complete(&fake, "maqet add b"), ["base.ron"]);
    assert_eq!(fish_complete(&fake, "maqet ls --status r"), ["running"]);
}
