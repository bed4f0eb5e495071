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
    on_tmpfs(size, &common::root().join("scripts/demo.rhai"))
}

/// Runs `script` with its work dir on a tmpfs of `size`; the run, and what it left on the tmpfs.
fn on_tmpfs(size: &str, script_path: &std::path::Path) -> (Run, String) {
    let mnt = tempfile::tempdir().expect("mount point");
    let script = r#"mount -t tmpfs -o "size=$1" etcdscript-test "$2" || exit 99
TMPDIR="$2" "$3" run "$4"
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
        .arg(script_path)
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

/// Members started again keep their data dirs: starting a stopped cluster at once needs room
/// for none, as starting its members one after another would.
#[test]
fn members_started_again_need_no_room_for_new_data_dirs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("again.rhai");
    let text = |again: &str| {
        format!(
            r#"let ca = ca("ca");
let server = issue(ca, "server", #{{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] }});
let c = cluster(["m1", "m2", "m3"], #{{ ca: ca, cert: server }});
spawn_members(c);
wait_healthy(c);
for n in c.names {{ stop_member(c.member(n)); }}
{again}
wait_healthy(c);
"#
        )
    };
    // Three stopped members' data dirs take about 190 MB of the 480 (running, each takes about
    // 125 MB): room for one more, not for three, and for the three to run again.
    for again in [
        "spawn_members(c);",
        "for n in c.names { spawn_member(c, n); }",
    ] {
        std::fs::write(&script, text(again)).unwrap();
        let (run, left) = on_tmpfs("480m", &script);
        assert_eq!(run.code, 0, "{again}: {}{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("no room on disk"), "{}", run.stderr);
        assert_eq!(left, "[]", "the run left its work dir behind");
    }
    // Inverted: three new members do not fit where their data dirs would need 3 x 130 MB.
    std::fs::write(&script, text("")).unwrap();
    let (run, _) = on_tmpfs("350m", &script);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stderr, "no room on disk for member m3: ");
}
