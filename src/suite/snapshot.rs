//! Golden transcripts in insta's `.snap` format, so that `cargo insta review` and `cargo insta
//! accept` work on them: a YAML header between `---` lines (`source`, `expression`,
//! `input_file`), then the contents, here `exit: N`, `---` and the transcript. Contents are
//! compared as insta compares them: header ignored, trailing whitespace trimmed, CRLF as LF.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A snapshot file as read, or as about to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The header lines between the `---` lines, kept as they are so that accepting an unchanged
    /// snapshot rewrites nothing.
    pub header: Vec<String>,
    pub contents: String,
}

/// What a run is compared by: its exit code and transcript.
pub fn contents(exit: i32, transcript: &str) -> String {
    format!("exit: {exit}\n---\n{transcript}")
}

/// insta's normalisation for file snapshots.
fn normalize(s: &str) -> String {
    s.trim_end().replace("\r\n", "\n")
}

impl Snapshot {
    /// A new snapshot of `script`'s run.
    pub fn new(script: &Path, contents: String) -> Snapshot {
        let script = script.display().to_string();
        Snapshot {
            header: vec![
                format!("source: {}", yaml_str(&script)),
                "expression: exit code and transcript".into(),
                format!("input_file: {}", yaml_str(&script)),
            ],
            contents,
        }
    }

    /// Parses a snapshot file's text.
    pub fn parse(text: &str) -> Snapshot {
        let mut lines = text.split_inclusive('\n');
        let mut header = Vec::new();
        let mut rest_at = 0;
        if text.lines().next().map(str::trim_end) == Some("---") {
            rest_at += lines.next().map_or(0, str::len);
            for line in lines.by_ref() {
                rest_at += line.len();
                if line.trim_end() == "---" {
                    break;
                }
                header.push(line.trim_end_matches(['\n', '\r']).to_owned());
            }
        }
        Snapshot {
            header,
            contents: text[rest_at..].to_owned(),
        }
    }

    /// Reads a snapshot file; `None` if there is none.
    pub fn read(path: &Path) -> Result<Option<Snapshot>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(Snapshot::parse(&text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!(
                "failed to read snapshot {}",
                path.display()
            ))(e)),
        }
    }

    /// Whether `contents` is what this snapshot holds.
    pub fn matches(&self, contents: &str) -> bool {
        normalize(&self.contents) == normalize(contents)
    }

    /// The snapshot with other contents and the same header.
    pub fn with_contents(&self, contents: String) -> Snapshot {
        Snapshot {
            header: self.header.clone(),
            contents,
        }
    }

    /// The file's text, as insta writes it.
    pub fn render(&self) -> String {
        let mut out = String::from("---\n");
        for line in &self.header {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("---\n");
        out.push_str(normalize(&self.contents).as_str());
        out.push('\n');
        out
    }

    /// Writes the snapshot to `path`, through a side file so that a reader never sees half of it.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(Error::io(format!("failed to create {}", dir.display())))?;
        }
        let side = PathBuf::from(format!("{}.tmp", path.display()));
        std::fs::write(&side, self.render())
            .and_then(|()| std::fs::rename(&side, path))
            .map_err(Error::io(format!(
                "failed to write snapshot {}",
                path.display()
            )))
    }
}

/// Where insta looks for a pending snapshot: `X.snap.new` beside `X.snap`.
pub fn pending_path(snap: &Path) -> PathBuf {
    PathBuf::from(format!("{}.new", snap.display()))
}

/// The exit code a snapshot's contents record, if they do.
pub fn recorded_exit(contents: &str) -> Option<i32> {
    contents
        .lines()
        .next()?
        .strip_prefix("exit: ")?
        .trim()
        .parse()
        .ok()
}

/// A YAML scalar: plain when that reads back the same, else double-quoted (JSON's escapes are
/// YAML's).
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+@ ".contains(c))
        && !s.starts_with(['-', ' ', '@'])
        && !s.ends_with(' ');
    if plain {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_SNAP: &str = "---\nsource: tests/scripts.rs\nassertion_line: 16\nexpression: run.snapshot()\ninput_file: scripts/demo.rhai\n---\nexit: 0\n---\nline one\nok: 2 checks held\n";

    #[test]
    fn reads_and_renders_insta_files_unchanged() {
        let snap = Snapshot::parse(REPO_SNAP);
        assert_eq!(snap.header.len(), 4);
        assert_eq!(snap.contents, "exit: 0\n---\nline one\nok: 2 checks held\n");
        assert_eq!(snap.render(), REPO_SNAP);
        assert_eq!(recorded_exit(&snap.contents), Some(0));
    }

    #[test]
    fn compares_like_insta() {
        let snap = Snapshot::parse(REPO_SNAP);
        assert!(snap.matches("exit: 0\r\n---\r\nline one\r\nok: 2 checks held\n\n"));
        assert!(!snap.matches("exit: 1\n---\nline one\nok: 2 checks held\n"));
    }

    #[test]
    fn new_headers_quote_what_yaml_would_misread() {
        assert_eq!(yaml_str("suite/a.rhai"), "suite/a.rhai");
        assert_eq!(yaml_str("a: b.rhai"), "\"a: b.rhai\"");
        let snap = Snapshot::new(Path::new("t/x.rhai"), contents(1, "FAILED: x\n"));
        assert!(snap.render().starts_with("---\nsource: t/x.rhai\n"));
        assert_eq!(
            Snapshot::parse(&snap.render()),
            snap.with_contents("exit: 1\n---\nFAILED: x\n".into())
        );
    }
}
