//! Every scenario in scripts/ runs through the built binary against real etcd; its exit code and
//! transcript are kept in snapshots/. The same snapshots hold for etcd 3.4 and 3.5.

mod common;

#[test]
fn scripts() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("../scripts", "*.rhai", |path| {
            let script = common::rel(path);
            let run = common::etcdscript(&["run", &script]);
            eprintln!("--- {script}: exit {}\n{}", run.code, run.stderr);
            insta::assert_snapshot!(run.snapshot());
        });
    });
}
