//! The zsh completion script: one `_arguments` function per command, as zsh
//! completions are written by hand, so options show their descriptions and
//! are not offered twice.

use std::fmt::Write as _;

use argh::FlagInfoKind;

use super::{Node, Shorthand, Value};

const HEADER: &str = r#"#compdef maqet
#
# zsh completion for maqet.
#
# Generated from maqet's command-line definition (src/cli.rs) by
# `maqet completions zsh`; scripts/gen-docs rewrites it. Do not edit.
#
# Install: maqet completions zsh > ~/.zfunc/_maqet, with ~/.zfunc in $fpath
# before compinit runs (fpath=(~/.zfunc $fpath) in ~/.zshrc).

# VM names, from the store the command line points at.
_maqet_vms() {
  local -a names
  names=(${(f)"$(command maqet "${_maqet_store[@]}" ls --names 2>/dev/null </dev/null)"})
  _wanted vms expl VM compadd -a - names
}
"#;

pub(super) fn script(root: &Node) -> String {
    let mut s = String::from(HEADER);
    for node in root.walk() {
        s.push('\n');
        if node.children.is_empty() {
            leaf(&mut s, root, node);
        } else {
            group(&mut s, root, node);
        }
    }
    s.push_str("\n_maqet \"$@\"\n");
    s
}

/// The function that completes `node`: `_maqet_qmp_device_add`.
fn function(node: &Node) -> String {
    let mut name = String::from("_maqet");
    for word in &node.path {
        name.push('_');
        name.push_str(&word.replace('-', "_"));
    }
    name
}

/// A command with verbs: its options, then a verb, then the verb's own
/// function on the rest of the words.
fn group(s: &mut String, root: &Node, node: &Node) {
    let _ = writeln!(s, "{}() {{", function(node));
    s.push_str("  local curcontext=$curcontext state state_descr line ret=1\n");
    s.push_str("  typeset -A opt_args\n");
    if node.path.is_empty() {
        s.push_str("  local -a _maqet_store\n");
    }
    s.push_str("  local -a verbs=(\n");
    for child in &node.children {
        let verb = child.path.last().copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "    {}",
            quote(&format!(
                "{}:{}",
                verb.replace(':', "\\:"),
                child.description.trim_end_matches('.')
            ))
        );
    }
    s.push_str("  )\n  _arguments -C -S \\\n");
    for spec in flag_specs(root, node) {
        let _ = writeln!(s, "    {spec} \\");
    }
    s.push_str("    ': :->verb' \\\n    '*:: :->args' && ret=0\n");
    let label = quote(&format!("{} command", node.command_line()));
    s.push_str("  case $state in\n    verb)\n");
    let _ = writeln!(s, "      _describe -t commands {label} verbs && ret=0");
    if Shorthand::of(&node.path).is_some() {
        s.push_str("      _maqet_vms && ret=0\n");
    }
    s.push_str("      ;;\n    args)\n");
    if node.path.is_empty() {
        for long in root.store_options() {
            let _ = writeln!(
                s,
                "      if (( ${{+opt_args[{long}]}} )); then\n        \
                 local dir=${{(Q)opt_args[{long}]}}\n        \
                 [[ $dir == '~' || $dir == '~/'* ]] && dir=$HOME${{dir#\\~}}\n        \
                 _maqet_store+=({long} \"$dir\")\n      fi"
            );
        }
    }
    if Shorthand::of(&node.path).is_some() {
        s.push_str("      local -a names=(${verbs%%:*})\n");
    }
    match Shorthand::of(&node.path) {
        Some(Shorthand::ImpliedVerb(verb)) => {
            let _ = writeln!(
                s,
                "      if (( ! ${{names[(Ie)$words[1]]}} )); then\n        \
                 words=({verb} \"${{words[@]}}\")\n        \
                 (( CURRENT++ ))\n      fi"
            );
        }
        Some(Shorthand::VmBeforeVerb) => {
            let _ = writeln!(
                s,
                "      if (( ! ${{names[(Ie)$words[1]]}} )); then\n        \
                 if (( CURRENT == 2 )); then\n          \
                 _describe -t commands {label} verbs\n          \
                 return\n        \
                 fi\n        \
                 words=(\"$words[2]\" \"$words[1]\" \"${{(@)words[3,-1]}}\")\n      fi"
            );
        }
        None => {}
    }
    let prefix = if node.path.is_empty() {
        "maqet".to_owned()
    } else {
        format!("maqet-{}", node.path.join("-"))
    };
    let _ = writeln!(
        s,
        "      curcontext=${{curcontext%:*:*}}:{prefix}-$words[1]:\n      case $words[1] in"
    );
    for child in &node.children {
        let verb = child.path.last().copied().unwrap_or_default();
        let _ = writeln!(s, "        ({verb}) {} && ret=0 ;;", function(child));
    }
    s.push_str("      esac\n      ;;\n  esac\n  return ret\n}\n");
}

/// A command without verbs: its options and positionals.
fn leaf(s: &mut String, root: &Node, node: &Node) {
    let _ = writeln!(s, "{}() {{", function(node));
    let mut specs = flag_specs(root, node);
    for (index, p) in node.positionals.iter().enumerate() {
        let value = Value::of(root, &node.path, p.name);
        let last = index + 1 == node.positionals.len();
        let head = if last && super::repeats(&p.optionality) {
            "*"
        } else if p.optionality == argh::Optionality::Optional {
            ":"
        } else {
            ""
        };
        specs.push(quote(&format!(
            "{head}:{}:{}",
            message(p.name),
            action(&value)
        )));
    }
    if specs.is_empty() {
        s.push_str("  _arguments -S\n}\n");
        return;
    }
    s.push_str("  _arguments -S \\\n");
    let _ = writeln!(s, "    {}", specs.join(" \\\n    "));
    s.push_str("}\n");
}

/// `_arguments` specs for the flags of `node`.
fn flag_specs(root: &Node, node: &Node) -> Vec<String> {
    let mut specs = Vec::new();
    for flag in node.all_flags() {
        let repeats = super::repeats(&flag.optionality);
        let description = format!("[{}]", bracketed(flag.description));
        let value = match flag.kind {
            FlagInfoKind::Option { arg_name } => format!(
                ":{}:{}",
                message(arg_name),
                action(&Value::of(root, &node.path, arg_name))
            ),
            FlagInfoKind::Switch => String::new(),
        };
        let tail = format!("{description}{value}");
        let spec = match (flag.short, flag.long) {
            // --help ends the command line.
            (None, "--help") => quote(&format!("(- *)--help{tail}")),
            (Some(c), long) if repeats => format!("'*'{{-{c},{long}}}{}", quote(&tail)),
            (Some(c), long) => format!("'(-{c} {long})'{{-{c},{long}}}{}", quote(&tail)),
            (None, long) if repeats => quote(&format!("*{long}{tail}")),
            (None, long) => quote(&format!("{long}{tail}")),
        };
        specs.push(spec);
    }
    specs
}

/// The `_arguments` action that completes `value`.
fn action(value: &Value) -> String {
    match value {
        Value::Vm => "_maqet_vms".into(),
        Value::File => "_files".into(),
        Value::Dir => "_files -/".into(),
        Value::Words(words) => format!("({})", words.join(" ")),
        // Nothing to complete; zsh shows the message.
        Value::Other => " ".into(),
    }
}

/// An argument's name where `_arguments` reads a message: colons escaped.
fn message(name: &str) -> String {
    name.replace('\\', "\\\\").replace(':', "\\:")
}

/// A description inside `[...]` of an `_arguments` spec.
fn bracketed(text: &str) -> String {
    let mut out = String::new();
    for c in super::one_line(text).chars() {
        if matches!(c, '\\' | '[' | ']' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` in single quotes, as zsh reads them.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
