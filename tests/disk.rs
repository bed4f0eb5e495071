//! A disk without room for a member's data dir: etcd meeting a full disk stops without a word in
//! its log (it cannot write one), which must not pass for a failed start. The run says it is the
//! disk, as an environment error (exit 4), before starting the member that would not fit.
//!
//! The disk is a tmpfs of a chosen size, mounted in a mount namespace of the test's own (gone
//! with its last process), and given to the run as TMPDIR.

mod common;

use common::Run;

/// Runs the demo with its work dir on a tmpfs of `size`; the run, and what it left on the tmpfs.
fn demo_on_tmpfs(size: &str) -> (Run, String) {
    let mnt = tempfile::tempdir().expect("mount point");
    let script = r#"mount -t tmpfs -o "size=$1" etcdscript-test "$2" || exit 99
TMPDIR="$2" "$3" run scripts/demo.rhai
code=$?
echo "left on the disk: [$(ls -A "$2")]" >&2
exit $code"#;
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(size)
        .arg(mnt.path())
        .arg(common::bin())
        .current_dir(common::root())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("unshare (util-linux) runs");
    let code = common::wait_bounded(&mut child, 120);
    let run = Run {
        code,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    };
    assert_ne!(
        run.code, 99,
        "could not mount a tmpfs (root needed):\n{}",
        run.stderr
    );
    let left = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("left on the disk: "))
        .expect("the shell said what was left")
        .to_owned();
    (run, left)
}

#[test]
fn a_member_that_would_not_fit_on_the_disk_is_an_environment_error_naming_the_disk() {
    // Each member preallocates about 125 MB: two fit in 300 MB, the third does not.
    let (run, left) = demo_on_tmpfs("300m");
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    common::assert_has(
        &run.stdout,
        "start infra1: serving\nstart infra2: serving\n",
    );
    common::assert_has(&run.stderr, "no room on disk for member infra3: ");
    common::assert_has(&run.stderr, "(it preallocates its write-ahead log)");
    assert!(!run.stdout.contains("start failed"), "{}", run.stdout);
    assert!(!run.stderr.contains("start failed"), "{}", run.stderr);
    assert_eq!(left, "[]", "the run left its work dir behind");

    // The control: the same demo on a disk with room passes.
    let (run, left) = demo_on_tmpfs("1g");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("no room on disk"), "{}", run.stderr);
    assert_eq!(left, "[]", "the run left its work dir behind");
}
