//! The export as a standalone bash script: it makes the PKI with openssl, starts the members
//! with etcd, makes each call with etcdctl, and fails (exit 1, `FAIL: ...`) wherever the run's
//! checks would have. It works in a new temp dir, and stops its members and removes the dir
//! however it ends.

use std::path::Path;

use super::{complete, Chunk};

/// The lines every export starts with: settings, clean-up, and the helpers its checks use.
pub const PRELUDE: &str = r#"set -euo pipefail
ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
export ETCDCTL_API=3 ETCDCTL_DIAL_TIMEOUT=2s ETCDCTL_COMMAND_TIMEOUT=5s
declare -A PID=() MARK=()
WORK=$(mktemp -d)
cleanup() {
  for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
# (Its stderr is closed: bash would report each member it kills.)
trap 'cleanup 2>/dev/null' EXIT
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
# retry SECONDS COMMAND...: runs COMMAND until it succeeds, for at most SECONDS.
retry() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}
# refused_in_log LOG MARK PATTERN: waits (3 s at most) for LOG, after its line MARK, to log a
# refused connection whose reason matches PATTERN.
refused_in_log() {
  local end=$((SECONDS + 3))
  until tail -n "+$(($2 + 1))" "$1" | grep 'rejected connection' | grep -qiE "$3"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}"#;

/// Writes `text` as comment lines, every line of it (a value the script printed may hold
/// newlines, which must not end the comment).
fn comment(out: &mut String, lead: &str, text: &str) {
    if text.is_empty() {
        out.push_str("#\n");
    }
    for (i, line) in text.lines().enumerate() {
        let lead = if i == 0 { lead } else { "  " };
        out.push_str(&format!("# {lead}{line}\n"));
    }
}

/// The chunks as a bash script.
pub fn render(chunks: &[Chunk], name: &Path) -> String {
    let mut out = String::from("#!/usr/bin/env bash\n");
    out.push_str(&format!(
        "# Exported by etcdscript from {}: the same steps with openssl, etcd and etcdctl.\n",
        name.display()
    ));
    out.push_str(
        "# Run it with etcd and etcdctl on PATH (or ETCD=... ETCDCTL=...): it exits 0 if every\n",
    );
    out.push_str("# check holds, and prints FAIL and exits 1 at the first that does not.\n");
    if !complete(chunks) {
        out.push_str("#\n# PARTIAL: some steps have no shell form here; each is marked NOT EXPRESSED below,\n");
        out.push_str("# and the checks after it may not hold without it.\n");
    }
    out.push('\n');
    out.push_str(PRELUDE);
    out.push('\n');
    for c in chunks {
        out.push('\n');
        for p in &c.prose {
            comment(&mut out, "", p);
        }
        for u in &c.unexpressed {
            comment(&mut out, "NOT EXPRESSED: ", u);
        }
        for l in &c.commands {
            out.push_str(l);
            out.push('\n');
        }
        for s in &c.said {
            comment(&mut out, "  etcdscript: ", s);
        }
    }
    out.push_str("\necho \"ok: every check held\"\n");
    out
}
