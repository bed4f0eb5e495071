//! `etcdscript export`: a script's passing run, told as the shell tutorial it replaces. The run's
//! trace (see `crate::trace`) is cut into chunks, one per statement of the script that did
//! something: the script's comments before it, the shell commands that do the same (openssl,
//! etcd, etcdctl), and what etcdscript saw. `bash` renders the chunks as a standalone script
//! that checks itself, `markdown` as prose and command blocks.
//!
//! What the shell cannot do (a primitive with no command here, an identity etcdctl cannot
//! take, members on hosts of their own) is never dropped: its chunk says so, and the export is
//! partial.

mod bash;
pub mod commands;
mod markdown;
mod openssl;

use std::collections::HashMap;
use std::path::Path;

use crate::trace::{Step, Trace};

/// The formats an export is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Bash,
    Markdown,
}

/// One statement's worth of the tutorial.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The script's comment lines before it, as written (`//` taken off).
    pub prose: Vec<String>,
    /// Shell lines that do what it did.
    pub commands: Vec<String>,
    /// What etcdscript said of it (its transcript lines).
    pub said: Vec<String>,
    /// Why the shell lines do not do all of it, if they do not.
    pub unexpressed: Vec<String>,
}

/// The primitives whose steps the shell renders, and those that change nothing to render.
const RENDERED: &[&str] = &[
    "ca",
    "issue",
    "cluster",
    "spawn_member",
    "spawn_members",
    "wait_healthy",
    "kv_set",
    "kv_get",
    "user_add",
    "user_delete",
    "role_add",
    "role_delete",
    "role_grant",
    "role_revoke",
    "user_grant_role",
    "user_revoke_role",
    "auth_enable",
    "auth_disable",
    "restart_member",
    "peer_refusal",
    "revoke",
    "expect_error",
    "stop_member",
    "kill_member",
    "show_cert",
    "sleep",
];
const PURE: &[&str] = &["member", "assert", "assert_eq", "base64", "is_def_var"];

/// The comment blocks of a script: (line of the first comment line, the lines without `//`).
/// Only whole-line comments count; a blank line or code ends a block.
fn comment_blocks(source: &str) -> Vec<(usize, Vec<String>)> {
    let mut blocks: Vec<(usize, Vec<String>)> = Vec::new();
    let mut open = false;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim_start();
        if let Some(text) = t.strip_prefix("//") {
            let text = text.strip_prefix(' ').unwrap_or(text).trim_end().to_owned();
            if open {
                if let Some(b) = blocks.last_mut() {
                    b.1.push(text);
                }
            } else {
                blocks.push((i + 1, vec![text]));
                open = true;
            }
        } else {
            open = false;
        }
    }
    blocks
}

/// The ports an export gives members: the seed tutorial's 2379N and 2380N for the first nine,
/// others above; ports a script pinned stay.
#[derive(Debug, Default)]
pub struct Ports {
    map: HashMap<u16, u16>,
    next: u16,
    /// The ports scripts pinned, which no other member is given.
    pinned: Vec<u16>,
}

impl Ports {
    /// Notes the ports of a cluster whose ports the script pinned.
    fn pin(&mut self, members: &[crate::trace::PlannedMember]) {
        for m in members {
            self.pinned.extend([m.client_port, m.peer_port]);
        }
    }

    fn plan(&mut self, members: &[crate::trace::PlannedMember], pinned: bool) {
        for m in members {
            let (client, peer, http) = loop {
                self.next += 1;
                let g = self.next;
                let ports = if g <= 9 {
                    (23790 + g, 23800 + g, 23810 + g)
                } else {
                    (33000 + 3 * g, 33001 + 3 * g, 33002 + 3 * g)
                };
                if pinned
                    || ![ports.0, ports.1, ports.2]
                        .iter()
                        .any(|p| self.pinned.contains(p))
                {
                    break ports;
                }
            };
            if pinned {
                self.map.insert(m.client_port, m.client_port);
                self.map.insert(m.peer_port, m.peer_port);
            } else {
                self.map.insert(m.client_port, client);
                self.map.insert(m.peer_port, peer);
            }
            if let Some(h) = m.http_port {
                self.map.insert(h, http);
            }
        }
    }

    /// The export's port for a port of the run.
    pub fn of(&self, port: u16) -> u16 {
        self.map.get(&port).copied().unwrap_or(port)
    }

    /// `text` with every `:port` of the run made the export's.
    pub fn rewrite(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.map {
            out = out.replace(&format!(":{from}"), &format!(":{to}"));
        }
        out
    }
}

/// Cuts a passing run's trace into chunks, with the script's comments placed before the
/// statement that follows them.
pub fn chunks(trace: &Trace, source: &str) -> Vec<Chunk> {
    let mut ctx = commands::Context::default();
    let steps = trace.steps();
    let mut blocks = comment_blocks(source).into_iter().peekable();
    let mut out: Vec<Chunk> = Vec::new();
    // A comment that opens the script is the tutorial's title and introduction, a chunk of its
    // own.
    if let Some((1, _)) = blocks.peek() {
        if let Some((_, intro)) = blocks.next() {
            out.push(Chunk {
                prose: intro,
                ..Chunk::default()
            });
        }
    }
    ctx.peer_marks = steps.iter().any(|s| matches!(s, Step::PeerRefusal { .. }));
    // Ports a script pins are nobody else's in the export.
    for step in steps {
        if let Step::Cluster {
            members,
            pinned: true,
            ..
        } = step
        {
            ctx.ports.pin(members);
        }
    }
    let mut cur = Chunk::default();
    // Whether the last step rendered was a refusal: the only thing `expect_error` can follow.
    let mut refused = false;
    let mut last_line = 0;
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Workdir(dir) => ctx.workdir = dir.clone(),
            Step::Expected { .. } => {
                if !refused {
                    cur.unexpressed.push(format!(
                        "the refusal `expect_error` checks (line {last_line}): the shell has no command for the operation refused"
                    ));
                }
                refused = false;
            }
            Step::Unexpressed(why) => cur.unexpressed.push(why.clone()),
            Step::Call {
                primitive,
                line,
                nested,
            } => {
                last_line = *line;
                refused = false;
                // A call of the script's own (not inside another's closure) starts a statement;
                // one that only reads or checks values (`c.member(..)`, `assert_eq`) does not.
                if !nested && !PURE.contains(primitive) {
                    if !is_empty(&cur) {
                        out.push(std::mem::take(&mut cur));
                    }
                    while let Some((l, _)) = blocks.peek() {
                        if *l >= *line {
                            break;
                        }
                        if let Some((_, text)) = blocks.next() {
                            if !cur.prose.is_empty() {
                                cur.prose.push(String::new());
                            }
                            cur.prose.extend(text);
                        }
                    }
                }
                if !RENDERED.contains(primitive) && !PURE.contains(primitive) {
                    cur.unexpressed.push(format!(
                        "`{primitive}` (line {line}) has no shell command here"
                    ));
                }
            }
            Step::Said(line) => cur.said.push(line.clone()),
            other => {
                refused = matches!(
                    other,
                    Step::Kv {
                        outcome: crate::trace::Outcome::Refused { .. },
                        ..
                    } | Step::PeerRefusal {
                        outcome: crate::trace::Outcome::Refused { .. },
                        ..
                    }
                );
                let expected = match steps.get(i + 1) {
                    Some(Step::Expected { classes }) => Some(classes.clone()),
                    _ => None,
                };
                commands::render(&mut ctx, other, expected.as_deref(), &mut cur);
            }
        }
    }
    if !is_empty(&cur) {
        out.push(std::mem::take(&mut cur));
    }
    // Comments after the last statement close the tutorial.
    for (_, text) in blocks {
        if !cur.prose.is_empty() {
            cur.prose.push(String::new());
        }
        cur.prose.extend(text);
    }
    if !is_empty(&cur) {
        out.push(cur);
    }
    out
}

fn is_empty(c: &Chunk) -> bool {
    c.prose.is_empty() && c.commands.is_empty() && c.said.is_empty() && c.unexpressed.is_empty()
}

/// The export of a passing run's chunks in `format`; `name` is the script's path as given, for
/// the header.
pub fn render(format: Format, chunks: &[Chunk], name: &Path) -> String {
    match format {
        Format::Bash => bash::render(chunks, name),
        Format::Markdown => markdown::render(chunks, name),
    }
}

/// Whether every chunk was expressed in the shell.
pub fn complete(chunks: &[Chunk]) -> bool {
    chunks.iter().all(|c| c.unexpressed.is_empty())
}
