//! The config invariant: whatever a config file holds, `maqet add FILE`
//! either refuses it as a config problem the user can read, or accepts a
//! config whose command line keeps every user string in its place.

use std::ffi::OsStr;

use camino::Utf8Path;

use crate::Error;
use crate::config::{VmConfig, load_file, merge};
use crate::layout::RuntimePaths;
use crate::paths::PathPolicy;
use crate::qemu::argv::{Accelerator, Plan, build};
use crate::storage::Chains;

/// Load `dir/vm.ron` as `maqet add` does (`load_file`, then `merge` onto
/// the defaults) and check the outcome: a refusal with [`check_error`], an
/// accepted config by building its argv and checking it with
/// [`super::argv::check`].
pub fn check_file(dir: &Utf8Path, policy: &PathPolicy) -> Result<(), String> {
    let loaded = match load_file(OsStr::new("vm.ron"), dir, policy) {
        Ok(loaded) => loaded,
        Err(err) => return check_error(&err),
    };
    let (config, name) = match merge(VmConfig::default(), vec![loaded.layer]) {
        Ok(merged) => merged,
        Err(err) => return check_error(&err),
    };
    let name = name.map_or_else(|| "vm".to_owned(), |n| n.to_string());
    let runtime = RuntimePaths::new(dir.join("run"));
    let plan = Plan {
        name: &name,
        config: &config,
        accel: Accelerator::Tcg,
        runtime: &runtime,
        disks_dir: &dir.join("disks"),
        chains: &Chains::new(),
    };
    let argv = build(&plan);
    super::argv::check(&plan, &argv).map_err(|broken| format!("{broken}\nargv: {argv:?}"))
}

/// A config error as `maqet` reports it: one of the config kinds, exit
/// code 3 or 4, a report that renders (miette, as the CLI prints it) with no
/// raw control character left after `terminal::safe`, and `--json` output
/// that parses.
pub fn check_error(err: &Error) -> Result<(), String> {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    if !matches!(
        err,
        Error::Config(_)
            | Error::ConfigUnreadable { .. }
            | Error::Invalid { .. }
            | Error::Path { .. }
    ) {
        return Err(format!("a config problem reported as {err:?}"));
    }
    if !matches!(err.exit_code(), 3 | 4) {
        return Err(format!("exit code {} for {err}", err.exit_code()));
    }
    let mut text = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false)
        .render_report(&mut text, err)
        .map_err(|e| format!("the report of {err:?} does not render: {e}"))?;
    if text.is_empty() {
        return Err(format!("an empty report for {err:?}"));
    }
    let shown = crate::terminal::safe(&text, false);
    if shown
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!("a raw control character in {shown:?}"));
    }
    let json: serde_json::Value = serde_json::from_str(&crate::render::error_json(err))
        .map_err(|e| format!("the error JSON of {err:?} does not parse: {e}"))?;
    if !json["error"]["message"].is_string() {
        return Err(format!("no error message in {json}"));
    }
    Ok(())
}
