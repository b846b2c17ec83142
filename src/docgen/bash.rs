//! The bash completion script.
//!
//! One function, `_maqet`, walks the words before the cursor the way argh
//! will: global options, then the command path (`qmp keys`), counting
//! positionals and skipping option values. Then it offers what fits the
//! cursor: an option's value, the options, the verbs, or the positional's
//! value (VM names come from `maqet ls --names`, with the `--data-dir`,
//! `--runtime-dir` and `--config-dir` given before the command).

use std::fmt::Write as _;

use super::{Node, Shorthand, Value};

const HEADER: &str = r#"# bash completion for maqet
#
# Generated from maqet's command-line definition (src/cli.rs) by
# `maqet completions bash`; scripts/gen-docs rewrites it. Do not edit.
#
# Install: maqet completions bash > ~/.local/share/bash-completion/completions/maqet
# (or source this file from ~/.bashrc).

# Readline splits words at COMP_WORDBREAKS (= and : among them), so
# `--wait-for port:22` arrives as three words: join what was typed without
# spaces back into the word maqet will see, up to the cursor.
_maqet_split() {
    local line=${COMP_LINE:0:COMP_POINT} rest word i
    words=()
    cword=-1
    for ((i = 0; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        rest=${line#"${line%%[![:space:]]*}"}
        ((i == COMP_CWORD)) && word=$rest
        if ((i > 0 && ${#rest} == ${#line})); then
            words[cword]+=$word
        else
            words+=("$word")
            cword=$((cword + 1))
        fi
        line=${rest:${#word}}
    done
}

_maqet_words() {
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_maqet_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
}

_maqet_dirs() {
    compopt -o filenames 2>/dev/null
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur")
}

# VM names, from the store the command line points at.
_maqet_vms() {
    _maqet_words "$(command maqet "${store[@]}" ls --names 2>/dev/null </dev/null)"
}
"#;

const FOOTER: &str = r#"
    # Readline replaces only the part of the word after its last = or :.
    local breaks=
    [[ $COMP_WORDBREAKS == *=* ]] && breaks+="="
    [[ $COMP_WORDBREAKS == *:* ]] && breaks+=":"
    if [[ -n $breaks && $cur == *["$breaks"]* ]]; then
        local prefix=${cur%"${cur##*["$breaks"]}"}
        COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
    fi
    return 0
}

complete -F _maqet maqet
"#;

pub(super) fn script(root: &Node) -> String {
    let mut s = String::from(HEADER);
    walk_words(&mut s, root);
    offer(&mut s, root);
    s.push_str(FOOTER);
    s
}

/// The first half of `_maqet`: the words before the cursor give the
/// command (`cmd`), the positional count (`npos`), whether an option waits
/// for its value (`want`), and the global options naming the store.
fn walk_words(s: &mut String, root: &Node) {
    s.push_str(
        r"
_maqet() {
    local -a words=() store=()
    local cword
    _maqet_split
    local cur=${words[cword]} cmd= want= vm= npos=0 ddash= word i
    COMPREPLY=()
    for ((i = 1; i < cword; i++)); do
        word=${words[i]}
        if [[ -n $want ]]; then
            case $want in
",
    );
    let store = root.store_options();
    if !store.is_empty() {
        // Given before the command or after it.
        let patterns: Vec<String> = store
            .iter()
            .map(|long| format!("*{}", want(&[], long)))
            .collect();
        let _ = writeln!(s, "                {})", patterns.join(" | "));
        s.push_str(
            "                    [[ $word == \"~\" || $word == \"~/\"* ]] && word=$HOME${word:1}\n\
             \x20                   store+=(\"${want##*:}\" \"$word\")\n\
             \x20                   ;;\n",
        );
    }
    s.push_str(
        r"            esac
            want=
            continue
        fi
        if [[ -z $ddash && $word == -* ]]; then
            case $cmd:$word in
                *:--) ddash=1 ;;
",
    );
    let nodes = root.walk();
    let with_value: Vec<String> = nodes
        .iter()
        .flat_map(|n| n.options().map(|(f, _)| want(&n.path, f.long)))
        .collect();
    if !with_value.is_empty() {
        let _ = writeln!(
            s,
            "                {})\n                    want=$cmd:$word\n                    ;;",
            with_value.join(" | \\\n                ")
        );
    }
    s.push_str(
        r"            esac
            continue
        fi
        case $cmd in
",
    );
    for node in nodes.iter().filter(|n| !n.children.is_empty()) {
        path_step(s, node);
    }
    s.push_str(
        r"            *) npos=$((npos + 1)) ;;
        esac
    done
",
    );
}

/// The second half of `_maqet`: what to offer at the cursor.
fn offer(s: &mut String, root: &Node) {
    let nodes = root.walk();
    s.push_str("\n    if [[ -n $want ]]; then\n        case $want in\n");
    for node in &nodes {
        for (flag, arg) in node.options() {
            if let Some(action) = action(&Value::of(root, &node.path, arg)) {
                let _ = writeln!(
                    s,
                    "            {}) {action} ;;",
                    want(&node.path, flag.long)
                );
            }
        }
    }
    s.push_str(
        r"        esac
    elif [[ -z $ddash && $cur == -* ]]; then
        case $cmd in
",
    );
    for node in &nodes {
        let mut names = Vec::new();
        for flag in node.all_flags() {
            names.extend(flag.short.map(|c| format!("-{c}")));
            names.push(flag.long.to_owned());
        }
        let _ = writeln!(
            s,
            "            {}) _maqet_words {} ;;",
            quote(&node.name()),
            quote(&names.join(" "))
        );
    }
    s.push_str("        esac\n    else\n        case $cmd in\n");
    for node in &nodes {
        positional_step(s, root, node);
    }
    s.push_str("        esac\n    fi\n");
}

/// The `case $want` pattern for option `long` of the command at `path`.
fn want(path: &[&str], long: &str) -> String {
    quote(&format!("{}:{long}", path.join(" ")))
}

/// How the word after a command with verbs moves `cmd` along.
fn path_step(s: &mut String, node: &Node) {
    let names: Vec<String> = node
        .children
        .iter()
        .filter_map(|c| c.path.last().map(|name| quote(name)))
        .collect();
    let next = if node.path.is_empty() {
        "cmd=$word"
    } else {
        "cmd=\"$cmd $word\""
    };
    let _ = writeln!(s, "            {})", quote(&node.name()));
    s.push_str("                case $word in\n");
    let _ = writeln!(s, "                    {})", names.join(" | "));
    let _ = writeln!(s, "                        {next}");
    if Shorthand::of(&node.path) == Some(Shorthand::VmBeforeVerb) {
        s.push_str("                        [[ -n $vm ]] && npos=1\n");
    }
    s.push_str("                        ;;\n");
    match Shorthand::of(&node.path) {
        Some(Shorthand::ImpliedVerb(verb)) => {
            let _ = writeln!(
                s,
                "                    *) cmd={} npos=1 ;;",
                quote(&format!("{} {verb}", node.name()))
            );
        }
        Some(Shorthand::VmBeforeVerb) => {
            s.push_str(
                "                    *) if [[ -n $vm ]]; then cmd=!; else vm=$word; fi ;;\n",
            );
        }
        // An unknown command: nothing after it can be completed.
        None => s.push_str("                    *) cmd=! ;;\n"),
    }
    s.push_str("                esac\n                ;;\n");
}

/// What to offer at a positional of `node`, or its verbs.
fn positional_step(s: &mut String, root: &Node, node: &Node) {
    let pattern = quote(&node.name());
    if !node.children.is_empty() {
        let verbs: Vec<&str> = node
            .children
            .iter()
            .filter_map(|c| c.path.last().copied())
            .collect();
        let verbs = quote(&verbs.join(" "));
        match Shorthand::of(&node.path) {
            Some(Shorthand::ImpliedVerb(_)) => {
                let _ = writeln!(
                    s,
                    "            {pattern}) _maqet_words {verbs}; _maqet_vms ;;"
                );
            }
            Some(Shorthand::VmBeforeVerb) => {
                let _ = writeln!(
                    s,
                    "            {pattern}) _maqet_words {verbs}; [[ -z $vm ]] && _maqet_vms ;;"
                );
            }
            None => {
                let _ = writeln!(s, "            {pattern}) _maqet_words {verbs} ;;");
            }
        }
        return;
    }
    let mut arms = Vec::new();
    for (index, p) in node.positionals.iter().enumerate() {
        let Some(action) = action(&Value::of(root, &node.path, p.name)) else {
            continue;
        };
        let last = index + 1 == node.positionals.len();
        let label = if last && super::repeats(&p.optionality) {
            "*".to_owned()
        } else {
            index.to_string()
        };
        arms.push(format!("{label}) {action} ;;"));
    }
    if arms.is_empty() {
        return;
    }
    let _ = writeln!(s, "            {pattern})\n                case $npos in");
    for arm in arms {
        let _ = writeln!(s, "                    {arm}");
    }
    s.push_str("                esac\n                ;;\n");
}

/// The bash that completes `value`, if anything does.
fn action(value: &Value) -> Option<String> {
    match value {
        Value::Vm => Some("_maqet_vms".into()),
        Value::File => Some("_maqet_files".into()),
        Value::Dir => Some("_maqet_dirs".into()),
        Value::Words(words) => Some(format!("_maqet_words {}", quote(&words.join(" ")))),
        Value::Other => None,
    }
}

/// `text` in double quotes, for a case pattern or an argument.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
