//! `tamper`: damage a file of the run's PKI on purpose, to show what etcd does with a key that
//! is gone or a certificate or CRL that is no such thing. Only files of this run's `pki/` are
//! touched, and only by the names the script gave them.

use std::fs;
use std::path::Path;

use super::Session;
use crate::error::{Error, Result};
use crate::pki::{Ca, Cert};

/// What a PEM file is replaced with: well-formed PEM whose contents are no certificate or CRL,
/// as a half-written or mixed-up file would be.
const GARBAGE: &str =
    "-----BEGIN X509 CRL-----\nbm90IGEgY2VydGlmaWNhdGUgb3IgYSBDUkw=\n-----END X509 CRL-----\n";

/// Which file of a certificate or a CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Key,
    Cert,
    Crl,
}

impl Part {
    pub fn parse(s: &str) -> Option<Part> {
        match s {
            "key" => Some(Part::Key),
            "cert" => Some(Part::Cert),
            "crl" => Some(Part::Crl),
            _ => None,
        }
    }
}

fn overwrite(path: &Path) -> Result<()> {
    let _writes = crate::lifecycle::hold_writes();
    fs::write(path, GARBAGE).map_err(Error::io(format!("failed to write {}", path.display())))
}

impl Session {
    /// `tamper(cert, part)`: its key removed, or its certificate overwritten.
    pub fn tamper_cert(&mut self, cert: &Cert, part: Part) -> Result<()> {
        let done = match part {
            Part::Key => {
                let _writes = crate::lifecycle::hold_writes();
                match fs::remove_file(&cert.key_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::io(format!(
                            "failed to remove {}",
                            cert.key_path.display()
                        ))(e))
                    }
                }
                "key removed"
            }
            Part::Cert => {
                overwrite(&cert.cert_path)?;
                "certificate file overwritten with PEM that is no certificate"
            }
            Part::Crl => {
                return Err(Error::Script(format!(
                    "tamper({}): a certificate has a \"key\" and a \"cert\"; a CRL is a CA's",
                    cert.name
                )))
            }
        };
        // Like `revoke`: the next operation shows what a client connecting now meets.
        self.clients.clear();
        self.transcript
            .line(format!("tamper {}: {done}", cert.name));
        Ok(())
    }

    /// `tamper(ca, part)`: its CRL or its certificate overwritten.
    pub fn tamper_ca(&mut self, ca: &Ca, part: Part) -> Result<()> {
        let done = match part {
            Part::Crl => {
                overwrite(&ca.crl_path)?;
                "CRL file overwritten with PEM that is no CRL"
            }
            Part::Cert => {
                overwrite(&ca.cert_path)?;
                "certificate file overwritten with PEM that is no certificate"
            }
            Part::Key => {
                return Err(Error::Script(format!(
                    "tamper({}): a CA's key is never given to etcd; tamper with its \"cert\" or \
                     \"crl\"",
                    ca.name
                )))
            }
        };
        self.clients.clear();
        self.transcript.line(format!("tamper {}: {done}", ca.name));
        Ok(())
    }
}
