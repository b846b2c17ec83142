//! `maqet completions` and `maqet man` print what is committed under
//! completions/ and man/, and the completions work for real: bash and fish
//! complete commands, VM names from the store (`ls --names`) and files.
//!
//! A missing bash, zsh, fish or groff skips its test loudly, unless
//! `MAQET_REQUIRE_TOOLS=1` (as in CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{BIN, Test, tree};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn committed(relative: &str) -> String {
    let path = Path::new(REPO).join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {relative} ({e}); run scripts/gen-docs"))
}

/// The man pages under man/, by the command each documents (`None` for
/// maqet.1).
fn pages() -> Vec<(Option<String>, String)> {
    let mut pages: Vec<(Option<String>, String)> = std::fs::read_dir(Path::new(REPO).join("man"))
        .expect("read man/; run scripts/gen-docs")
        .map(|e| {
            let name = e
                .expect("read man/")
                .file_name()
                .into_string()
                .expect("UTF-8");
            let stem = name.strip_suffix(".1").expect("a section 1 page");
            let command = stem.strip_prefix("maqet-").map(str::to_owned);
            (command, format!("man/{name}"))
        })
        .collect();
    pages.sort();
    pages
}

fn have(tool: &str, test: &str) -> bool {
    crate::harness::needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        crate::harness::runs(tool),
        &format!("{tool} is not installed"),
    )
}

#[test]
fn completions_are_the_committed_scripts() {
    for (shell, file) in [
        ("bash", "completions/maqet.bash"),
        ("zsh", "completions/_maqet"),
        ("fish", "completions/maqet.fish"),
    ] {
        Test::new()
            .args(["completions", shell])
            .stdout(&committed(file))
            .run();
    }
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    Test::new()
        .args(["completions", "tcsh"])
        .status(2)
        .stderr_contains("`tcsh` is not a shell maqet completes: use bash, zsh or fish")
        .run();
}

#[test]
fn man_prints_the_committed_pages() {
    let pages = pages();
    assert!(pages.len() > 10, "{pages:?}");
    for (command, file) in pages {
        let mut t = Test::new();
        t.arg("man").args(command).stdout(&committed(&file)).run();
    }
}

#[test]
fn man_of_an_unknown_command_names_the_pages() {
    Test::new()
        .args(["man", "strat"])
        .status(2)
        .stderr_contains("there is no manual page `strat`; the pages are: maqet, add, apply,")
        .run();
}

#[test]
fn man_pages_render_without_warnings() {
    if !have("groff", "man_pages_render_without_warnings")
        || !have("man", "man_pages_render_without_warnings")
    {
        return;
    }
    let mut t = Test::new();
    for (command, file) in pages() {
        let text = t.arg("man").args(command).run().stdout;
        let path = t.path(file.trim_start_matches("man/"));
        std::fs::write(&path, text).expect("write the page");
        let groff = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&path)
            .output()
            .expect("run groff");
        assert!(
            groff.status.success() && groff.stderr.is_empty(),
            "groff {file}: {}",
            String::from_utf8_lossy(&groff.stderr)
        );
        let man = Command::new("man")
            .args(["--warnings=w", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("run man");
        let shown = String::from_utf8_lossy(&man.stdout);
        assert!(
            man.status.success() && man.stderr.is_empty() && shown.contains("NAME"),
            "man -l {file}: {}",
            String::from_utf8_lossy(&man.stderr)
        );
    }
}

/// `ls --names` is what the completions call on every TAB: names only,
/// and nothing written, not even a data directory.
#[test]
fn ls_names_prints_names_and_writes_nothing() {
    let mut t = Test::new();
    t.args(["ls", "--names"]).stdout("").run();
    assert_eq!(tree(t.root()), Vec::<String>::new());
    t.add_empty("web");
    t.add_empty("db");
    let before = tree(t.root());
    let out = t.args(["ls", "--names"]).run();
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(tree(t.root()), before);
}

/// The directory of the maqet under test, first in PATH.
fn path_with_maqet() -> std::ffi::OsString {
    let dir = Path::new(BIN).parent().expect("the binary's directory");
    let mut path = dir.as_os_str().to_owned();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// A shell with the test's store and HOME, in its directory, running the
/// maqet under test.
fn shell(t: &Test, program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MAQET_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(t.root())
        .env("PATH", path_with_maqet())
        .env("HOME", t.root())
        .env("MAQET_DATA_DIR", t.data_dir())
        .env("MAQET_RUNTIME_DIR", t.runtime_dir())
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME");
    cmd
}

/// `script` (what `maqet completions SHELL` printed) saved in the test's
/// directory.
fn save_script(t: &mut Test, shell: &str) -> PathBuf {
    let text = t.args(["completions", shell]).run().stdout;
    let path = t.path(&format!("completion.{shell}"));
    std::fs::write(&path, text).expect("write the script");
    path
}

/// COMP_WORDS as readline fills them: split at blanks, and `=` and `:`
/// (in COMP_WORDBREAKS) as words of their own.
fn comp_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    for token in line.split_whitespace() {
        let mut word = String::new();
        for c in token.chars() {
            if matches!(c, '=' | ':') {
                words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                words.push(c.to_string());
            } else {
                word.push(c);
            }
        }
        words.extend((!word.is_empty()).then_some(word));
    }
    if line.ends_with(' ') {
        words.push(String::new());
    }
    words
}

/// What bash completes at the end of `line`, sorted: the script sourced,
/// COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set, `_maqet` called.
fn bash(t: &Test, script: &Path, line: &str) -> Vec<String> {
    let words: Vec<String> = comp_words(line).iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source \"$1\"\n\
         [[ $(complete -p maqet) == 'complete -F _maqet maqet' ]] || exit 3\n\
         COMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         COMP_WORDS=({})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
         _maqet\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words.join(" ")
    );
    let out = shell(t, "bash")
        .args(["--norc", "--noprofile", "-c", &program, "bash"])
        .arg(script)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{line}: exit {:?}: {}",
        out.status.code(),
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
fn bash_completes_commands_and_verbs() {
    if !have("bash", "bash_completes_commands_and_verbs") {
        return;
    }
    let mut t = Test::new();
    let script = save_script(&mut t, "bash");
    assert_eq!(
        bash(&t, &script, "maqet st"),
        ["start", "status", "stop", "storage"]
    );
    assert_eq!(bash(&t, &script, "maqet qmp k"), ["keys"]);
    assert_eq!(
        bash(&t, &script, "maqet snapshot "),
        ["create", "delete", "list", "load"]
    );
    assert_eq!(
        bash(&t, &script, "maqet completions "),
        ["bash", "fish", "zsh"]
    );
    assert_eq!(bash(&t, &script, "maqet man q"), ["qmp"]);
    // Directories only; and `completions` wrote nothing else.
    t.file("vms/vm.ron", "");
    assert_eq!(bash(&t, &script, "maqet --data-dir "), ["vms"]);
}

#[test]
fn bash_completes_vm_names_from_the_store() {
    if !have("bash", "bash_completes_vm_names_from_the_store") {
        return;
    }
    let mut t = Test::new();
    t.add_empty("web");
    t.add_empty("db");
    t.args([
        "--data-dir",
        "other",
        "add",
        "--empty",
        "--name",
        "elsewhere",
    ])
    .run();
    let script = save_script(&mut t, "bash");
    assert_eq!(bash(&t, &script, "maqet start "), ["db", "web"]);
    assert_eq!(bash(&t, &script, "maqet start w"), ["web"]);
    assert_eq!(bash(&t, &script, "maqet qmp keys "), ["db", "web"]);
    assert_eq!(bash(&t, &script, "maqet snapshot create "), ["db", "web"]);
    assert_eq!(
        bash(&t, &script, "maqet start --wait-for port:22 "),
        ["db", "web"]
    );
    // --data-dir before the command picks the store.
    assert_eq!(
        bash(&t, &script, "maqet --data-dir other rm "),
        ["elsewhere"]
    );
    assert_eq!(
        bash(&t, &script, "maqet --data-dir ~/other stop "),
        ["elsewhere"]
    );
    // ... and so does --data-dir after it, as maqet reads it.
    assert_eq!(
        bash(&t, &script, "maqet rm --data-dir other "),
        ["elsewhere"]
    );
    // Global options are offered after the command too; --version is not one.
    assert_eq!(bash(&t, &script, "maqet ls --j"), ["--json"]);
    assert_eq!(
        bash(&t, &script, "maqet qmp keys web --data"),
        ["--data-dir"]
    );
    assert_eq!(bash(&t, &script, "maqet ls --vers"), Vec::<String>::new());
}

#[test]
fn bash_completes_config_files() {
    if !have("bash", "bash_completes_config_files") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", "").file("base.ron", "");
    let script = save_script(&mut t, "bash");
    assert_eq!(
        bash(&t, &script, "maqet add "),
        ["base.ron", "completion.bash", "vm.ron"]
    );
    assert_eq!(bash(&t, &script, "maqet add vm.ron b"), ["base.ron"]);
    assert_eq!(bash(&t, &script, "maqet run v"), ["vm.ron"]);
}

#[test]
fn zsh_script_parses() {
    if !have("zsh", "zsh_script_parses") {
        return;
    }
    let mut t = Test::new();
    let script = save_script(&mut t, "zsh");
    let out = shell(&t, "zsh")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("run zsh");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What fish 3.6+ completes for `line`: candidates only, sorted.
fn fish(t: &Test, script: &Path, line: &str) -> Vec<String> {
    let out = shell(t, "fish")
        .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
        .arg(script)
        .arg(line)
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
fn fish_completes_commands_and_vm_names() {
    if !have("fish", "fish_completes_commands_and_vm_names") {
        return;
    }
    let mut t = Test::new();
    t.add_empty("web");
    let script = save_script(&mut t, "fish");
    let parsed = shell(&t, "fish")
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
        fish(&t, &script, "maqet st"),
        ["start", "status", "stop", "storage"]
    );
    assert_eq!(fish(&t, &script, "maqet qmp k"), ["keys"]);
    assert_eq!(fish(&t, &script, "maqet console "), ["web"]);
    assert_eq!(fish(&t, &script, "maqet ls --j"), ["--json"]);
    t.args([
        "--data-dir",
        "other",
        "add",
        "--empty",
        "--name",
        "elsewhere",
    ])
    .run();
    assert_eq!(
        fish(&t, &script, "maqet console --data-dir other "),
        ["elsewhere"]
    );
    assert_eq!(fish(&t, &script, "maqet completions z"), ["zsh"]);
}
