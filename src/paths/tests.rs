use super::*;

#[test]
fn system_dir_is_refused() {
    let policy = PathPolicy::new(None, None);
    let err = policy
        .check(OsStr::new("/etc/passwd"), Utf8Path::new("/"))
        .unwrap_err();
    assert!(err.is_refusal());
}
