//! The fish completion script: one function, `__maqet_complete`, that walks
//! the words before the cursor as the bash script does and prints the
//! candidates, each with its description.
//!
//! It reads the command line with `commandline -opc`, so it works on fish
//! 3.6 (Debian 12); `commandline -x` would need fish 3.7.

use std::fmt::Write as _;

use super::{Node, Shorthand, Value};

const HEADER: &str = r#"# fish completion for maqet
#
# Generated from maqet's command-line definition (src/cli.rs) by
# `maqet completions fish`; scripts/gen-docs rewrites it. Do not edit.
#
# Install: maqet completions fish > ~/.config/fish/completions/maqet.fish
# Works with fish 3.6 and later.

# VM names, from the store the command line points at.
function __maqet_vms
    command maqet $argv ls --names 2>/dev/null </dev/null
end

function __maqet_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l cur (commandline -ct)
    set -l cmd ''
    set -l want ''
    set -l vm ''
    set -l npos 0
    set -l ddash 0
    set -l store
    for word in $words
        if test -n "$want"
"#;

pub(super) fn script(root: &Node) -> String {
    let mut s = String::from(HEADER);
    walk_words(&mut s, root);
    offer(&mut s, root);
    s.push_str("\ncomplete -c maqet -f -a '(__maqet_complete)'\n");
    s
}

/// The first half of `__maqet_complete`: the words before the cursor give
/// the command (`cmd`), the positional count (`npos`), whether an option
/// waits for its value (`want`), and the global options naming the store.
fn walk_words(s: &mut String, root: &Node) {
    let store = root.store_options();
    if !store.is_empty() {
        s.push_str("            switch $want\n");
        // Given before the command or after it.
        let patterns: Vec<String> = store
            .iter()
            .map(|long| quote(&format!("*:{long}")))
            .collect();
        let _ = writeln!(s, "                case {}", patterns.join(" "));
        s.push_str(
            "                    set -a store (string replace -r -- '^.*:' '' $want) (string replace -r -- '^~(?=/|$)' $HOME $word)\n\
             \x20           end\n",
        );
    }
    s.push_str(
        "            set want ''
            continue
        end
        if test $ddash = 0; and string match -q -- '-*' $word
            switch \"$cmd:$word\"
                case '*:--'
                    set ddash 1
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
            "                case {}\n                    set want \"$cmd:$word\"",
            with_value.join(" \\\n                    ")
        );
    }
    s.push_str("            end\n            continue\n        end\n        switch $cmd\n");
    for node in nodes.iter().filter(|n| !n.children.is_empty()) {
        path_step(s, node);
    }
    s.push_str(
        "            case '*'
                set npos (math $npos + 1)
        end
    end
",
    );
}

/// The second half of `__maqet_complete`: what to offer at the cursor.
fn offer(s: &mut String, root: &Node) {
    let nodes = root.walk();
    s.push_str("\n    if test -n \"$want\"\n        switch $want\n");
    for node in &nodes {
        for (flag, arg) in node.options() {
            if let Some(action) = action(&Value::of(root, &node.path, arg)) {
                let _ = writeln!(
                    s,
                    "            case {}\n                {action}",
                    want(&node.path, flag.long)
                );
            }
        }
    }
    s.push_str(
        "        end
    else if test $ddash = 0; and string match -q -- '-*' $cur
        switch $cmd
",
    );
    for node in &nodes {
        let _ = writeln!(s, "            case {}", quote(&node.name()));
        let mut lines = Vec::new();
        for flag in node.all_flags() {
            if let Some(c) = flag.short {
                lines.push(candidate(&format!("-{c}"), flag.description));
            }
            lines.push(candidate(flag.long, flag.description));
        }
        let _ = writeln!(
            s,
            "                printf '%s\\t%s\\n' {}",
            lines.join(" \\\n                    ")
        );
    }
    s.push_str("        end\n    else\n        switch $cmd\n");
    for node in &nodes {
        positional_step(s, root, node);
    }
    s.push_str("        end\n    end\nend\n");
}

/// The `switch $want` pattern for option `long` of the command at `path`.
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
        "set cmd $word"
    } else {
        "set cmd \"$cmd $word\""
    };
    let _ = writeln!(s, "            case {}", quote(&node.name()));
    s.push_str("                switch $word\n");
    let _ = writeln!(s, "                    case {}", names.join(" "));
    let _ = writeln!(s, "                        {next}");
    if Shorthand::of(&node.path) == Some(Shorthand::VmBeforeVerb) {
        s.push_str("                        test -n \"$vm\"; and set npos 1\n");
    }
    s.push_str("                    case '*'\n");
    match Shorthand::of(&node.path) {
        Some(Shorthand::ImpliedVerb(verb)) => {
            let _ = writeln!(
                s,
                "                        set cmd {}\n                        set npos 1",
                quote(&format!("{} {verb}", node.name()))
            );
        }
        Some(Shorthand::VmBeforeVerb) => s.push_str(
            "                        if test -n \"$vm\"
                            set cmd '!'
                        else
                            set vm $word
                        end
",
        ),
        // An unknown command: nothing after it can be completed.
        None => s.push_str("                        set cmd '!'\n"),
    }
    s.push_str("                end\n");
}

/// What to offer at a positional of `node`, or its verbs.
fn positional_step(s: &mut String, root: &Node, node: &Node) {
    let pattern = quote(&node.name());
    if !node.children.is_empty() {
        let verbs: Vec<String> = node
            .children
            .iter()
            .filter_map(|c| c.path.last().map(|name| candidate(name, &c.description)))
            .collect();
        let _ = writeln!(s, "            case {pattern}");
        let _ = writeln!(
            s,
            "                printf '%s\\t%s\\n' {}",
            verbs.join(" \\\n                    ")
        );
        match Shorthand::of(&node.path) {
            Some(Shorthand::ImpliedVerb(_)) => s.push_str("                __maqet_vms $store\n"),
            Some(Shorthand::VmBeforeVerb) => {
                s.push_str("                test -z \"$vm\"; and __maqet_vms $store\n");
            }
            None => {}
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
            "'*'".to_owned()
        } else {
            index.to_string()
        };
        arms.push((label, action));
    }
    if arms.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "            case {pattern}\n                switch $npos"
    );
    for (label, action) in arms {
        let _ = writeln!(
            s,
            "                    case {label}\n                        {action}"
        );
    }
    s.push_str("                end\n");
}

/// The fish that completes `value`, if anything does.
fn action(value: &Value) -> Option<String> {
    match value {
        Value::Vm => Some("__maqet_vms $store".into()),
        Value::File => Some("__fish_complete_path $cur".into()),
        Value::Dir => Some("__fish_complete_directories $cur".into()),
        Value::Words(words) => {
            let words: Vec<String> = words.iter().map(|w| quote(w)).collect();
            Some(format!("printf '%s\\n' {}", words.join(" ")))
        }
        Value::Other => None,
    }
}

/// A candidate and its description, quoted, for `printf '%s\t%s\n'`: fish
/// shows what follows the tab next to the candidate.
fn candidate(word: &str, description: &str) -> String {
    let description = super::one_line(description);
    format!(
        "{} {}",
        quote(word),
        quote(description.trim_end_matches('.'))
    )
}

/// `text` in single quotes, as fish reads them.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}
