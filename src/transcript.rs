//! The transcript: the only writer of stdout. A line per step, in the script's own words and
//! names; never what the runtime chose (ports, paths, serials, IDs, times), which goes to the log.
//!
//! Also the one place that writes to stdout and stderr at all: `println!` and `eprintln!` panic on
//! a closed pipe (`etcdscript run x.rhai | head -1`), and a run must not end that way.

use std::io::Write;

/// Writes `text` and a newline to stdout, outside the transcript (`check`, `api`, `doctor`,
/// `clean`). A closed stdout is not an error: the run goes on to its verdict.
pub fn out(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
    let _ = out.flush();
}

/// Writes `text` and a newline to stderr. A closed stderr is not an error either.
pub fn err(text: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
}

/// Writes transcript lines and counts the checks that held.
#[derive(Debug, Default)]
pub struct Transcript {
    checks: usize,
    quiet: bool,
    /// The last line written (or that would have been, when quiet).
    last: Option<String>,
    /// The run's trace, when one is recorded (for an export): these lines go into it too.
    trace: Option<crate::trace::Trace>,
    /// Write to stderr instead: stdout has another use (an export).
    on_stderr: bool,
}

impl Transcript {
    /// A transcript that counts checks but writes nothing (for benchmarks).
    pub fn quiet() -> Transcript {
        Transcript {
            checks: 0,
            quiet: true,
            last: None,
            trace: None,
            on_stderr: false,
        }
    }

    /// A transcript written to stderr, for a command whose stdout is something else.
    pub fn on_stderr() -> Transcript {
        Transcript {
            on_stderr: true,
            ..Transcript::default()
        }
    }

    /// Writes one line, flushed at once so that an interrupted run shows how far it got.
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.last = Some(text.as_ref().to_owned());
        if let Some(t) = &mut self.trace {
            t.push(crate::trace::Step::Said(text.as_ref().to_owned()));
        }
        if self.quiet {
            return;
        }
        if self.on_stderr {
            err(text);
            return;
        }
        let mut out = std::io::stdout().lock();
        // A closed stdout (a pipe to `head`) must not turn into a failure of the run.
        let _ = writeln!(out, "{}", text.as_ref());
        let _ = out.flush();
    }

    /// Writes the line of a check that held, and counts it.
    pub fn check(&mut self, text: impl AsRef<str>) {
        self.checks += 1;
        self.line(text);
    }

    /// Records a trace of the run from now on.
    pub fn record_trace(&mut self) {
        self.trace.get_or_insert_with(Default::default);
    }

    /// Adds a step to the trace, if one is recorded.
    pub fn trace(&mut self, step: crate::trace::Step) {
        if let Some(t) = &mut self.trace {
            t.push(step);
        }
    }

    /// Whether a trace is recorded.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// The trace recorded, taken out.
    pub fn take_trace(&mut self) -> Option<crate::trace::Trace> {
        self.trace.take()
    }

    /// The last line written.
    pub fn last(&self) -> Option<String> {
        self.last.clone()
    }

    /// How many checks held.
    pub fn checks(&self) -> usize {
        self.checks
    }
}
