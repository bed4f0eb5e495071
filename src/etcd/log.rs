//! A member's log file: etcd's stderr, read from an offset onwards.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::reject::Rejection;

/// One member's log, written by etcd, read by us.
#[derive(Clone, Debug)]
pub struct MemberLog {
    pub member: String,
    pub path: PathBuf,
}

impl MemberLog {
    /// The current end of the log: lines written after this offset are news.
    pub fn mark(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// The complete lines written since `offset`, and the offset after the last of them.
    pub fn lines_since(&self, offset: u64) -> (Vec<String>, u64) {
        let mut buf = Vec::new();
        let read = File::open(&self.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            f.read_to_end(&mut buf)
        });
        if read.is_err() {
            return (Vec::new(), offset);
        }
        // A line still being written stays for the next read.
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&buf[..complete]);
        let lines = text.lines().map(str::to_owned).collect();
        (lines, offset + complete as u64)
    }

    /// The first connection this member refused since `offset`, if any, and the offset read up
    /// to.
    pub fn rejection_since(&self, offset: u64) -> (Option<Rejection>, u64) {
        let (lines, end) = self.lines_since(offset);
        let rejection = lines
            .iter()
            .find_map(|line| Rejection::from_log_line(&self.member, line));
        (rejection, end)
    }

    /// Whether a line since `offset` contains `needle`, and the offset read up to.
    pub fn contains_since(&self, offset: u64, needle: &str) -> (bool, u64) {
        let (lines, end) = self.lines_since(offset);
        (lines.iter().any(|l| l.contains(needle)), end)
    }

    /// The last `n` lines, for error messages.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let (lines, _) = self.lines_since(0);
        let start = lines.len().saturating_sub(n);
        lines[start..].to_vec()
    }

    /// The last line that says why etcd stopped or could not start (an error or fatal entry),
    /// else the last line.
    pub fn last_error(&self) -> Option<String> {
        let (lines, _) = self.lines_since(0);
        lines
            .iter()
            .rev()
            .find(|l| {
                l.contains("\"level\":\"fatal\"")
                    || l.contains("\"level\":\"error\"")
                    || l.contains("flag provided but not defined")
                    || l.contains("address already in use")
            })
            .or(lines.last())
            .map(|l| summarize_line(l))
    }
}

/// A log line without its timestamp and caller, so that it can be quoted in an error.
pub fn summarize_line(line: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.trim().to_owned();
    };
    let mut parts = Vec::new();
    for (k, v) in &map {
        if matches!(
            k.as_str(),
            "ts" | "caller" | "level" | "logger" | "stacktrace"
        ) {
            continue;
        }
        let v = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        if k == "msg" {
            parts.insert(0, v);
        } else {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(", ")
}
