//! Every scenario in scripts/ runs through `etcdscript test` against real etcd, each its own test
//! case; its exit code and transcript are held to snapshots/ (insta's format, so `cargo insta
//! review` works on changes). The same snapshots hold for etcd 3.4 and 3.5.

mod common;

#[test]
fn scripts() {
    let report =
        std::env::temp_dir().join(format!("etcdscript-scripts-{}.xml", std::process::id()));
    let report_arg = report.to_str().expect("utf-8 temp dir").to_owned();
    let run = common::etcdscript(&[
        "test",
        "scripts",
        "--snapshots",
        "snapshots",
        "--junit",
        &report_arg,
    ]);
    let junit = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    eprintln!("{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "the suite failed; see above");
    let scenarios = count_scripts(&common::root().join("scripts"));
    assert_eq!(junit.matches("<testcase ").count(), scenarios, "{junit}");
    common::assert_has(
        &run.stdout,
        format!("{scenarios} passed, 0 failed, 0 skipped"),
    );
}

/// The `*.rhai` files under `dir`, in its subdirectories too (`scripts/audit/`).
fn count_scripts(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("scripts/")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            if p.is_dir() {
                count_scripts(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "rhai"))
            }
        })
        .sum()
}
