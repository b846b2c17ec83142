//! `maqet ls`: the table, its JSON form and the status filter.

use serde_json::json;

use crate::harness::{MINIMAL, Test};

fn three_vms(t: &mut Test) {
    t.file("minimal.ron", MINIMAL);
    t.args([
        "add", "--empty", "--name", "web", "--memory", "4G", "--cpus", "4",
    ])
    .run();
    t.args(["add", "minimal.ron"]).run();
    t.args([
        "add",
        "--empty",
        "--name",
        "db-primary-with-a-long-name",
        "--memory",
        "1536M",
    ])
    .run();
}

#[test]
fn ls_table_is_sorted_by_name() {
    let mut t = Test::new();
    three_vms(&mut t);
    let out = t.args(["ls"]).run();
    insta::assert_snapshot!(t.redact(&out.stdout), @"
    NAME                         ID            STATUS   MEMORY  CPUS
    db-primary-with-a-long-name  [ short-id ]  created  1536M   1
    minimal                      [ short-id ]  created  256M    1
    web                          [ short-id ]  created  4G      4
    ");
}

#[test]
fn ls_shows_the_short_id() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.args(["ls"])
        .stdout(&format!(
            "NAME  ID            STATUS   MEMORY  CPUS\nweb   {}  created  1G      1\n",
            &id[..12]
        ))
        .run();
}

#[test]
fn ls_as_json() {
    let mut t = Test::new();
    three_vms(&mut t);
    let vms = t.list();
    let names: Vec<_> = vms.iter().map(|vm| vm["name"].clone()).collect();
    assert_eq!(
        names,
        [
            json!("db-primary-with-a-long-name"),
            json!("minimal"),
            json!("web")
        ]
    );
    let mut web = vms[2].clone();
    let id = web["id"].take();
    assert!(crate::harness::is_id(id.as_str().expect("id is a string")));
    assert_eq!(
        web,
        json!({
            "name": "web",
            "id": null,
            "status": "created",
            "memory": "4G",
            "memory_bytes": 4u64 << 30,
            "cpus": 4,
        })
    );
}

/// `--json ls` is written a VM at a time; the text is exactly what
/// pretty-printing the whole array would give.
#[test]
fn ls_json_text_is_the_pretty_printed_array() {
    let mut t = Test::new();
    three_vms(&mut t);
    let out = t.args(["--json", "ls"]).run().stdout;
    let whole: serde_json::Value = serde_json::from_str(&out).expect("ls prints JSON");
    let pretty = serde_json::to_string_pretty(&whole).expect("prints");
    assert_eq!(out, format!("{pretty}\n"));
    assert_eq!(whole.as_array().map(Vec::len), Some(3));
}

#[test]
fn ls_filters_by_status() {
    let mut t = Test::new();
    three_vms(&mut t);
    let all = t.args(["ls"]).run().stdout;
    t.args(["ls", "--status", "created"]).stdout(&all).run();
    t.args(["ls", "--status", "running"])
        .stdout("NAME  ID  STATUS  MEMORY  CPUS\n")
        .run();
    t.args(["--json", "ls", "--status", "stopped"])
        .stdout("[]\n")
        .run();
    t.args(["ls", "--status", "asleep"])
        .status(2)
        .stderr_contains("`asleep` is not a status")
        .run();
}

#[test]
fn ls_on_an_empty_store() {
    let mut t = Test::new();
    t.args(["ls"])
        .stdout("NAME  ID  STATUS  MEMORY  CPUS\n")
        .run();
    t.add_empty("web");
    t.args(["rm", "web"]).run();
    t.args(["ls"])
        .stdout("NAME  ID  STATUS  MEMORY  CPUS\n")
        .run();
    t.args(["--json", "ls"]).stdout("[]\n").run();
}

#[test]
fn ls_into_a_closed_pipe_is_success() {
    let mut t = Test::new();
    t.add_empty("web");
    // `maqet ls | head -0`: the reader is gone before maqet writes.
    let (reader, writer) = std::io::pipe().expect("make a pipe");
    drop(reader);
    let out = t
        .command(["ls"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run maqet");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
