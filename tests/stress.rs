//! Many runs at once on one machine: sixteen scenarios started together, each must print the
//! transcript it prints alone (its snapshot), and together they must leave no etcd member and
//! no work dir behind. No timing is asserted: the bounds are hang guards only.

mod common;

use std::path::PathBuf;

/// The solo transcript of a scenario: its snapshot without insta's header.
fn solo(script: &str) -> String {
    let path = common::root().join(format!("snapshots/scripts@{script}.snap"));
    let text = std::fs::read_to_string(&path).expect("snapshot");
    let body = text
        .splitn(3, "---\n")
        .nth(2)
        .expect("an insta snapshot: header between --- lines");
    body.to_owned()
}

#[test]
fn sixteen_scenarios_at_once_print_their_solo_transcripts_and_leave_nothing() {
    let mut scripts: Vec<String> = std::fs::read_dir(common::root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rhai"))
        // Pinned ports cannot be shared by two runs at once.
        .filter(|n| n != "tutorial-ports.rhai")
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 8, "{scripts:?}");
    let mix: Vec<String> = scripts.iter().cycle().take(16).cloned().collect();
    // Up to 60 members at once: their data dirs go where there is room for them.
    let tmp = common::roomy_tmpdir(60);
    let tmpdir = tmp.path().to_str().unwrap().to_owned();
    let runs: Vec<(String, common::Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = mix
            .iter()
            .map(|script| {
                let tmpdir = tmpdir.clone();
                s.spawn(move || {
                    let path = format!("scripts/{script}");
                    let run = common::etcdscript_env(&["run", &path], &[("TMPDIR", &tmpdir)], 600);
                    (script.clone(), run)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (script, run) in &runs {
        assert_eq!(
            run.snapshot(),
            solo(script),
            "{script} printed another transcript when run with 15 others:\n{}",
            run.stderr
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !common::etcd_under(tmp.path()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "members left running: {:?}",
            common::etcd_under(tmp.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(common::workdirs_in(tmp.path()), Vec::<PathBuf>::new());
}
