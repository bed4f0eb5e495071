//! The etcd flags a script may add (`args`): none that names a file, a directory or a socket,
//! since etcd would read or write it wherever it points. Every path etcd uses is set by
//! etcdscript, inside the work dir.

/// Flags that name a path without ending in `-file` or `-dir`.
const PATH_FLAGS: &[&str] = &[
    "log-outputs",
    "log-output",
    "log-rotation-config-json",
    "config",
];

/// Why `arg` may not be given to etcd, if it may not. Go's flag syntax is understood in all its
/// forms: `-flag`, `--flag`, `--flag=value` (a value in the next argument goes with a refused
/// flag anyway).
pub fn refusal(arg: &str) -> Option<String> {
    let lower = arg.to_ascii_lowercase();
    if lower.contains("unix://") || lower.contains("unixs://") {
        return Some(format!(
            "`{arg}` names a unix socket, which etcd would create outside the work dir"
        ));
    }
    if lower.contains("pub-key=") || lower.contains("priv-key=") {
        return Some(format!(
            "`{arg}` names key files, which etcd would read from outside the work dir"
        ));
    }
    let flag = lower.strip_prefix("--").or(lower.strip_prefix('-'))?;
    let name = flag
        .split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or(flag);
    let path_like = PATH_FLAGS.contains(&name)
        || [
            "-file", "-files", "-dir", "-dirs", "-path", "-paths", "-output", "-outputs",
        ]
        .iter()
        .any(|s| name.ends_with(s));
    path_like.then(|| {
        format!(
            "etcd flag `--{name}` names a file or directory, which etcd would read or write \
             outside the work dir; etcdscript sets every path etcd uses"
        )
    })
}

/// Fails with the first argument that may not be given to etcd, naming it and why.
pub fn check(args: &[String]) -> Result<(), String> {
    match args.iter().find_map(|a| refusal(a)) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_flags_are_refused_in_every_form() {
        for arg in [
            "--data-dir=/x",
            "--wal-dir",
            "-wal-dir=/elsewhere",
            "--log-outputs=stderr,/some/file",
            "--log-output",
            "--cert-file",
            "--key-file",
            "--trusted-ca-file",
            "--peer-cert-file",
            "--peer-key-file",
            "--peer-trusted-ca-file",
            "--peer-crl-file",
            "--client-crl-file",
            "--config-file=/etc/etcd.yml",
            "--Data-Dir=/x",
            "--listen-client-urls=unix:///tmp/sock",
            "--auth-token=jwt,pub-key=/k.pub,priv-key=/k,sign-method=RS256",
        ] {
            assert!(refusal(arg).is_some(), "{arg} passed");
        }
        let why = refusal("--wal-dir=/elsewhere").unwrap();
        assert!(why.contains("`--wal-dir`") && why.contains("outside the work dir"));
    }

    #[test]
    fn other_flags_pass() {
        for arg in [
            "--strict-reconfig-check=false",
            "--peer-cert-allowed-cn=infra1",
            "--client-cert-allowed-hostname",
            "localhost",
            "--auth-token=simple",
            "--listen-metrics-urls=http://127.0.0.1:0",
            "--snapshot-count=100",
            "/not/a/flag",
        ] {
            assert_eq!(refusal(arg), None, "{arg}");
        }
    }
}
