//! Renewal: a certificate issued again under the same name, its files replaced in place while
//! members may be reading them, the two ways operators do it.

use std::fs;
use std::path::Path;

use super::{Ca, Cert, CertSpec};
use crate::error::{Error, Result};

/// How the new files take the old ones' place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Replace {
    /// Written beside them, then renamed over them (each file atomically; the key first).
    Rename,
    /// Copied over them (truncated and rewritten, as `cp` does; the key first).
    Copy,
}

impl Replace {
    pub fn parse(s: &str) -> Option<Replace> {
        match s {
            "rename" => Some(Replace::Rename),
            "copy" => Some(Replace::Copy),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Replace::Rename => "rename",
            Replace::Copy => "copy",
        }
    }
}

impl Ca {
    /// Issues `spec` again as `old`'s name, with a new key, and puts its files where `old`'s are.
    pub fn renew(&self, dir: &Path, old: &Cert, spec: &CertSpec, how: Replace) -> Result<Cert> {
        // A leading dot: no name a script may give can be this one.
        let staged = format!(".{}.renewing", old.name);
        let new = self.issue(dir, &staged, spec)?;
        let place = |from: &Path, to: &Path| -> Result<()> {
            let _writes = crate::lifecycle::hold_writes();
            let done = match how {
                Replace::Rename => fs::rename(from, to),
                Replace::Copy => fs::copy(from, to).and_then(|_| fs::remove_file(from)),
            };
            done.map_err(|e| {
                Error::Environment(format!(
                    "failed to put {} in place of {}: {e}",
                    from.display(),
                    to.display()
                ))
            })
        };
        place(&new.key_path, &old.key_path)?;
        place(&new.cert_path, &old.cert_path)?;
        Ok(Cert {
            name: old.name.clone(),
            cert_path: old.cert_path.clone(),
            key_path: old.key_path.clone(),
            ..new
        })
    }
}
