//! Findings: checks that report instead of ending the run, as an audit wants. Each is a
//! result (pass, fail, not checkable) with its evidence; the run fails at its end if any failed.
//! An observation (info) reports what was seen where there is no right answer to check against,
//! such as whether RBAC is on.

use super::Session;

/// What a finding came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    NotCheckable,
    /// Seen, neither passed nor failed: an observation.
    Info,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotCheckable => "not checkable",
            Outcome::Info => "info",
        }
    }
}

/// One finding.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The benchmark item it stands for (`CIS 2.1`), or the script's own label.
    pub item: String,
    pub title: String,
    pub outcome: Outcome,
    /// What showed it: the last transcript line of the check, or why it failed.
    pub evidence: String,
}

impl Session {
    /// Records a finding and writes its line.
    pub fn finding(&mut self, f: Finding) {
        let line = match f.outcome {
            Outcome::Pass => format!("finding {} ({}): pass", f.item, f.title),
            _ => format!(
                "finding {} ({}): {}: {}",
                f.item,
                f.title,
                f.outcome.name(),
                f.evidence
            ),
        };
        self.transcript.line(line);
        self.findings.push(f);
    }

    /// The findings so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The last line the transcript wrote: a passing finding's evidence.
    pub fn last_line(&self) -> String {
        self.transcript.last().unwrap_or_default()
    }
}
