//! The shell commands for each step of a trace: etcd for members, etcdctl for calls, and the
//! checks that make the exported script fail where the run would have (openssl for the PKI is
//! in `openssl.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::openssl::{gencrl, render_ca, render_cert, render_revoke};
use super::{Chunk, Ports};
use crate::pki::{CertSpec, KeyKind, Usage};
use crate::trace::{Endpoint, Ident, KvOp, Outcome, Step};

/// What the rendering has seen so far.
#[derive(Debug, Default)]
pub struct Context {
    pub workdir: PathBuf,
    pub ports: Ports,
    /// Each CA's parent, for the chain a leaf sends.
    pub(super) parents: HashMap<String, Option<String>>,
    /// The CAs given an `openssl ca` configuration (for certificates with set dates, and CRLs).
    pub(super) ca_configs: Vec<String>,
    /// The CAs whose CRL was made.
    pub(super) crls: Vec<String>,
    /// Each member's cluster, by its members' names.
    clusters: HashMap<String, Vec<String>>,
    /// The run checks refused peers: each start marks the logs of its cluster, since a peer's
    /// refusal counts from the last start of a member, as in the run.
    pub peer_marks: bool,
}

/// A word quoted for the shell where it needs to be.
pub fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// A file of the run's work dir as the export names it: by its file name, in the current dir.
pub(super) fn local(ctx: &Context, p: &Path) -> String {
    p.strip_prefix(&ctx.workdir)
        .ok()
        .and_then(|rel| rel.file_name())
        .or_else(|| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// etcdctl's flags for an endpoint and an identity.
fn etcdctl(ctx: &Context, eps: &[&Endpoint], id: &Ident, c: &mut Chunk) -> String {
    let scheme = if id.plaintext { "http" } else { "https" };
    let urls: Vec<String> = eps
        .iter()
        .map(|e| format!("{scheme}://{}:{}", e.host, ctx.ports.of(e.port)))
        .collect();
    let mut cmd = format!("\"$ETCDCTL\" --endpoints={}", urls.join(","));
    if let Some(t) = &id.trust {
        cmd.push_str(&format!(" --cacert={}", local(ctx, t)));
    }
    if id.insecure {
        cmd.push_str(" --insecure-skip-tls-verify");
    }
    if let Some(cert) = &id.cert {
        cmd.push_str(&format!(
            " --cert={} --key={}",
            local(ctx, &cert.cert_path),
            local(ctx, &cert.key_path)
        ));
    }
    if let Some((user, pw)) = &id.login {
        cmd.push_str(&format!(" --user={}", sh(&format!("{user}:{pw}"))));
    }
    for key in &id.unexpressed {
        c.unexpressed.push(format!(
            "the identity's `{key}`, which etcdctl cannot be given: the command below does without"
        ));
    }
    cmd
}

/// The patterns (for `grep -iE`) by which the shell can see a refusal's class, where it can:
/// in the member's log (a line with `rejected connection`), or in etcdctl's own output.
fn log_pattern(class: &str) -> Option<&'static str> {
    Some(match class {
        "no client certificate" => "didn.t provide a certificate|did not provide a certificate",
        "unknown authority" => "unknown authority",
        "expired" => "has expired or is not yet valid.* is after",
        "not yet valid" => "has expired or is not yet valid.* is before",
        "incompatible key usage" => "incompatible key usage",
        "revoked" => "revoked",
        "not tls" => "does not look like a tls handshake|http request to an https server",
        "no shared tls version" => "unsupported versions|protocol version not supported",
        "no shared cipher suite" => "no cipher suite supported by both",
        "name not allowed" => {
            "authentication failed|not in the allowed|t contain any of|allowed hostname|allowed cn"
        }
        _ => return None,
    })
}

fn output_pattern(class: &str) -> Option<&'static str> {
    Some(match class {
        "permission denied" => "permission denied",
        "authentication failed" => {
            "authentication failed|user name not found|invalid auth token|user name is empty"
        }
        _ => return None,
    })
}

fn render_kv(
    ctx: &Context,
    op: &KvOp,
    ep: &Endpoint,
    id: &Ident,
    outcome: &Outcome,
    expected: Option<&[String]>,
    c: &mut Chunk,
) {
    let base = etcdctl(ctx, &[ep], id, c);
    // `--` ends etcdctl's flags: a key or value may start with `-`.
    let (cmd, what) = match op {
        KvOp::Put { key, value } => (
            format!("{base} put -- {} {}", sh(key), sh(value)),
            format!("put {key}"),
        ),
        // Its flags go before the `--`: see `get` below.
        KvOp::Get { key } => (format!("{base} get"), format!("get {key}")),
        KvOp::Admin { words, what } => {
            let words: Vec<String> = words.iter().map(|w| sh(w)).collect();
            (format!("{base} {}", words.join(" ")), what.clone())
        }
    };
    let via = format!("{what} via {}", ep.member);
    match outcome {
        Outcome::Ok(value) => match op {
            KvOp::Put { .. } | KvOp::Admin { .. } => c.commands.push(format!("{cmd} >/dev/null")),
            KvOp::Get { .. } => match value {
                // No such key: etcd returns no `kvs` (a key with an empty value has one).
                None => {
                    let KvOp::Get { key } = op else { return };
                    key_there(c, &cmd, key, &via, false);
                }
                // The value whole: `$(...)` drops trailing newlines, so a sentinel keeps them,
                // and the one newline etcdctl adds is taken off.
                Some(want) => {
                    let KvOp::Get { key } = op else { return };
                    if want.is_empty() {
                        // An empty value reads like no key at all: the key must be there.
                        key_there(c, &cmd, key, &via, true);
                    }
                    c.commands.push(format!(
                        "got=$({cmd} --print-value-only -- {}; echo x); got=${{got%x}}; got=${{got%$'\\n'}}",
                        sh(key)
                    ));
                    c.commands.push(format!(
                        "[ \"$got\" = {} ] || fail {}\"$got\"{}",
                        sh(want),
                        sh(&format!("{via} returned '")),
                        sh(&format!("', not '{want}'"))
                    ));
                }
            },
        },
        Outcome::Refused {
            class,
            log_of,
            answer,
        } => {
            if expected.is_none() {
                c.commands.push(format!(
                    "# The script caught this refusal ({class}) and went on: it must be refused here too."
                ));
            }
            let full = match op {
                KvOp::Get { key } => format!("{cmd} -- {}", sh(key)),
                _ => cmd.clone(),
            };
            refusal(
                ctx,
                &full,
                &via,
                ep,
                id,
                class,
                log_of.as_deref(),
                *answer,
                c,
            );
        }
    }
}

/// Checks that `key` exists (`there`) or not: etcd returns `kvs` only for a key that exists,
/// even with an empty value.
fn key_there(c: &mut Chunk, get: &str, key: &str, via: &str, there: bool) {
    c.commands.push(format!(
        "out=$({get} -w json -- {}) || fail {}",
        sh(key),
        sh(&format!("{via} failed"))
    ));
    let (not, why) = if there {
        ("", "found no key; there was one")
    } else {
        ("! ", "found a key; there was none")
    };
    c.commands.push(format!(
        "{not}grep -q '\"kvs\"' <<<\"$out\" || fail {}",
        sh(&format!("{via} {why}"))
    ));
}

/// The check that `cmd` is refused, and for `class` where the shell can see why: in the
/// refusing member's log, in etcdctl's output (a refusal in the member's answer), or from the
/// client's side with `openssl s_client` (a server certificate the client refused) or a plain
/// connect (a port nobody listens on).
#[allow(clippy::too_many_arguments)]
fn refusal(
    ctx: &Context,
    cmd: &str,
    via: &str,
    ep: &Endpoint,
    id: &Ident,
    class: &str,
    log_of: Option<&str>,
    answer: bool,
    c: &mut Chunk,
) {
    if let Some(member) = log_of {
        c.commands.push(format!("mark=$(wc -l < {member}.log)"));
    }
    c.commands.push(format!("if out=$({cmd} 2>&1); then"));
    c.commands.push(format!(
        "  fail {}",
        sh(&format!(
            "{via} was accepted; it had to be refused ({class})"
        ))
    ));
    c.commands.push("fi".into());
    let check = match log_of {
        Some(member) => log_pattern(class).map(|p| {
            format!(
                "refused_in_log {member}.log \"$mark\" {} || fail {}",
                sh(p),
                sh(&format!("{member}'s log does not say {class}"))
            )
        }),
        None if answer => output_pattern(class).map(|p| {
            format!(
                "grep -qiE {} <<<\"$out\" || fail {}\"$out\"",
                sh(p),
                sh(&format!("etcdctl did not say {class}: "))
            )
        }),
        None => client_check(ctx, ep, id, class),
    };
    match check {
        Some(line) => c.commands.push(line),
        None => {
            let from = match (log_of, answer) {
                (Some(m), _) => format!("{m}'s log"),
                (None, true) => "the member's answer".to_owned(),
                (None, false) => "the client".to_owned(),
            };
            c.commands.push(format!(
                "# etcdscript saw why ({class}, from {from}); etcdctl does not say it, so here the shell checks only that it was refused"
            ));
        }
    }
}

/// A refusal the client saw, checked from the client's side where a tool shows the reason.
fn client_check(ctx: &Context, ep: &Endpoint, id: &Ident, class: &str) -> Option<String> {
    let port = ctx.ports.of(ep.port);
    let verify = match class {
        "unavailable" => {
            return Some(format!(
                "! (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null || fail {}",
                sh(&format!("{}'s port {port} takes connections", ep.member))
            ))
        }
        "unknown authority" => "verify error:num=(2|18|19|20|21):",
        "expired" => "verify error:num=10:",
        "hostname mismatch" => "verify error:num=62:",
        _ => return None,
    };
    if id.plaintext || id.insecure {
        return None;
    }
    let mut s = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername {} -verify_hostname {} -verify_return_error",
        sh(&ep.host),
        sh(&ep.host)
    );
    if let Some(t) = &id.trust {
        s.push_str(&format!(" -CAfile {}", local(ctx, t)));
    }
    if let Some(cert) = &id.cert {
        s.push_str(&format!(
            " -cert {} -key {}",
            local(ctx, &cert.cert_path),
            local(ctx, &cert.key_path)
        ));
    }
    // The handshake fails, so s_client exits non-zero: its output is read whole, then searched.
    Some(format!(
        "tls=$({s} </dev/null 2>&1 || true)\ngrep -qE {} <<<\"$tls\" || fail {}",
        sh(verify),
        sh(&format!(
            "openssl s_client does not see {class} from {}",
            ep.member
        ))
    ))
}

/// Adds the commands for `step` to `c`; `expected` is set when the step is an operation that
/// `expect_error` expected to be refused.
pub fn render(ctx: &mut Context, step: &Step, expected: Option<&[String]>, c: &mut Chunk) {
    match step {
        Step::Ca { ca, spec, parent } => {
            render_ca(ctx, &ca.name, spec.days, spec.key, parent.as_deref(), c)
        }
        Step::Cert { cert, spec, ca } => render_cert(ctx, &cert.name, spec, ca, c),
        Step::Cluster {
            members,
            pinned,
            hosts,
            probe,
            ca,
            ..
        } => {
            ctx.ports.plan(members, *pinned);
            let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
            for n in &names {
                ctx.clusters.insert(n.clone(), names.clone());
            }
            if *hosts {
                c.unexpressed.push(
                    "members on hosts of their own (network namespaces, addresses in 198.18.0.0/15): the commands below keep those addresses, which a reader's machine does not have"
                        .into(),
                );
            }
            c.commands.push(format!(
                "# etcdscript's own health probe: a client certificate it makes for {}",
                probe.name
            ));
            let spec = CertSpec {
                cn: probe.cn.clone(),
                sans: probe.sans.clone(),
                usage: vec![Usage::Client],
                not_before_days: None,
                not_after_days: 1,
                not_after_secs: None,
                key: KeyKind::EcP256,
                chain: false,
            };
            render_cert(ctx, &probe.name, &spec, ca, c);
        }
        Step::Start { member, args } => {
            // A CRL the member reads is made before it starts (an empty one at first).
            for a in args.iter().filter(|a| a.ends_with(".crl")) {
                let file = local(ctx, Path::new(a));
                let ca = file.trim_end_matches(".crl").to_owned();
                if !ctx.crls.contains(&ca) {
                    gencrl(ctx, &ca, c);
                }
            }
            let words: Vec<String> = args
                .iter()
                .map(|a| {
                    let a = if a.starts_with('/') {
                        local(ctx, Path::new(a))
                    } else {
                        a.clone()
                    };
                    sh(&ctx.ports.rewrite(&a))
                })
                .collect();
            if ctx.peer_marks {
                let names = ctx.clusters.get(member).cloned().unwrap_or_default();
                c.commands.push(format!(
                    "for m in {}; do MARK[$m]=$(wc -l 2>/dev/null < \"$m.log\" || echo 0); done",
                    names.join(" ")
                ));
            }
            let mut line = "\"$ETCD\"".to_owned();
            for pair in words.chunks(2) {
                line.push_str(" \\\n    ");
                line.push_str(&pair.join(" "));
            }
            c.commands
                .push(format!("{line} \\\n    >{member}.log 2>&1 &"));
            c.commands.push(format!("PID[{member}]=$!"));
            c.commands.push(format!(
                "retry 10 grep -q '\"msg\":\"serving peer traffic\"' {member}.log || fail {}",
                sh(&format!("{member} did not start; see {member}.log"))
            ));
        }
        Step::Stop { member, killed } => {
            let sig = if *killed { "KILL" } else { "TERM" };
            c.commands.push(format!(
                "kill -{sig} \"${{PID[{member}]}}\"; wait \"${{PID[{member}]}}\" || true"
            ));
        }
        Step::Healthy { members, identity } => {
            let eps: Vec<&Endpoint> = members.iter().collect();
            let cmd = etcdctl(ctx, &eps, identity, c);
            c.commands.push(format!(
                "retry 15 {cmd} endpoint health || fail 'the members did not become healthy'"
            ));
        }
        Step::Kv {
            op,
            endpoint,
            identity,
            outcome,
        } => render_kv(ctx, op, endpoint, identity, outcome, expected, c),
        Step::PeerRefusal { member, outcome } => match (outcome, expected) {
            (Outcome::Refused { class, log_of, .. }, Some(_)) => {
                let log = log_of.as_deref().unwrap_or(member);
                c.commands.push(
                    "# A member's log does not say whether a peer or a client dialed: this checks \
                     that it refused a connection for this reason since a member of its cluster \
                     last started."
                        .into(),
                );
                match log_pattern(class) {
                    Some(p) => c.commands.push(format!(
                        "refused_in_log {log}.log \"${{MARK[{log}]:-0}}\" {} || fail {}",
                        sh(p),
                        sh(&format!(
                            "{log}'s log shows no connection refused as {class}"
                        ))
                    )),
                    None => c.unexpressed.push(format!(
                        "the shell has no words for a peer refused as `{class}` in {log}'s log"
                    )),
                }
            }
            (Outcome::Refused { class, .. }, None) => c.commands.push(format!(
                "# {member} refused a peer ({class}); the script went on"
            )),
            (Outcome::Ok(_), _) => c.unexpressed.push(format!(
                "{member} refused no peer: a log does not tell a peer's connection from a \
                 client's, so the shell cannot check that none was refused"
            )),
        },
        Step::Revoked { ca, cert } => {
            let file = local(ctx, &cert.cert_path);
            render_revoke(ctx, ca, &file, c);
        }
        Step::Shown { cert } => c.commands.push(format!(
            "openssl x509 -in {} -noout -subject -issuer -dates",
            local(ctx, &cert.cert_path)
        )),
        Step::Slept { ms } => c
            .commands
            .push(format!("sleep {}.{:03}", ms / 1000, ms % 1000)),
        Step::Expected { .. }
        | Step::Unexpressed(_)
        | Step::Call { .. }
        | Step::Said(_)
        | Step::Workdir(_) => {}
    }
}
