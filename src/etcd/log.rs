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

    /// The log's lines, less a Go panic's traceback: after a panic (`"level":"panic"`) or a
    /// fatal error, Go prints `panic: ...` and the goroutines' stack frames, which say nothing
    /// to a script's author; the logged entry before them has the message.
    fn lines_without_traceback(&self) -> Vec<String> {
        let (mut lines, _) = self.lines_since(0);
        if let Some(start) = lines.iter().position(|l| {
            l.starts_with("panic: ")
                || l.starts_with("fatal error: ")
                || l.starts_with("goroutine ")
        }) {
            lines.truncate(start);
        }
        lines
    }

    /// The last `n` lines (a Go traceback left out), for error messages.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lines_without_traceback();
        let start = lines.len().saturating_sub(n);
        lines[start..].to_vec()
    }

    /// The last line that says why etcd stopped or could not start (a panic, fatal or error
    /// entry), else the last line.
    pub fn last_error(&self) -> Option<String> {
        let lines = self.lines_without_traceback();
        let level = |l: &String, level: &str| l.contains(&format!("\"level\":\"{level}\""));
        lines
            .iter()
            .rev()
            .find(|l| level(l, "panic") || level(l, "dpanic") || level(l, "fatal"))
            .or_else(|| {
                lines.iter().rev().find(|l| {
                    level(l, "error")
                        || l.contains("flag provided but not defined")
                        || l.contains("address already in use")
                })
            })
            .or(lines.last())
            .map(|l| summarize_line(l))
    }
}

/// A log line without its timestamp and caller, so that it can be quoted in an error.
pub fn summarize_line(line: &str) -> String {
    let max = crate::limits::MAX_ERROR_LINE_CHARS;
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line) else {
        return crate::quote::clip(line.trim(), max);
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
    crate::quote::clip(&parts.join(", "), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_quoted_by_its_message_not_its_stack_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m1.log");
        std::fs::write(
            &path,
            "{\"level\":\"info\",\"msg\":\"starting\"}\n\
             {\"level\":\"panic\",\"ts\":\"t\",\"caller\":\"c\",\"msg\":\"failed to create WAL\",\"error\":\"no space left on device\",\"stacktrace\":\"a.b\"}\n\
             panic: failed to create WAL\n\n\
             goroutine 1 [running]:\n\
             go.uber.org/zap/zapcore.(*CheckedEntry).Write(0xc0001)\n\
             \t/go/zap/zapcore/entry.go:234 +0x585\n",
        )
        .unwrap();
        let log = MemberLog {
            member: "m1".into(),
            path,
        };
        assert_eq!(
            log.last_error().as_deref(),
            Some("failed to create WAL, error=no space left on device")
        );
        let tail = log.tail(8).join("\n");
        assert!(
            !tail.contains("goroutine") && !tail.contains("entry.go"),
            "{tail}"
        );
    }
}
