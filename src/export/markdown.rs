//! The export as a tutorial in Markdown: the script's comments become the text, in whatever
//! language they are written; each statement its command block, then what etcdscript saw when
//! it ran the same step.

use std::path::Path;

use super::{bash::PRELUDE, complete, Chunk};

/// The chunks as Markdown.
pub fn render(chunks: &[Chunk], name: &Path) -> String {
    let mut out = String::new();
    // The script's first comment is the tutorial's title and introduction.
    let intro: &[String] = chunks.first().map_or(&[], |c| &c.prose);
    let title = intro
        .first()
        .cloned()
        .unwrap_or_else(|| name.display().to_string());
    out.push_str(&format!("# {title}\n\n"));
    push_prose(&mut out, intro.get(1..).unwrap_or(&[]));
    out.push_str(&format!(
        "*Exported by etcdscript from `{}`; `etcdscript export --format bash` gives the same \
         commands as one script that checks itself.*\n\n",
        name.display()
    ));
    if !complete(chunks) {
        out.push_str("**Partial:** some steps have no shell form here; each says so below.\n\n");
    }
    out.push_str("Set-up: a new directory to work in, and the helpers the checks use.\n\n");
    out.push_str(&format!("```sh\n{PRELUDE}\n```\n"));
    for (i, c) in chunks.iter().enumerate() {
        out.push('\n');
        if i > 0 {
            push_prose(&mut out, &c.prose);
        }
        for u in &c.unexpressed {
            out.push_str(&format!("> **Not expressed in the shell:** {u}.\n\n"));
        }
        if !c.commands.is_empty() {
            out.push_str("```sh\n");
            for l in &c.commands {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("```\n\n");
        }
        if !c.said.is_empty() {
            out.push_str("etcdscript saw:\n\n```text\n");
            for s in &c.said {
                out.push_str(s);
                out.push('\n');
            }
            out.push_str("```\n");
        }
    }
    out
}

fn push_prose(out: &mut String, prose: &[String]) {
    let prose = prose
        .iter()
        .skip_while(|p| p.is_empty())
        .collect::<Vec<_>>();
    if prose.is_empty() {
        return;
    }
    for p in prose {
        out.push_str(p);
        out.push('\n');
    }
    out.push('\n');
}
