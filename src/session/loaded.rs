//! A PKI read from files (`load_ca`, `load_cert`), from the one directory the command line
//! opened to scripts (`--pki DIR`) and nowhere else.

use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{describe_cert, Session};
use crate::error::{Error, Result};
use crate::pki::{Ca, Cert};

/// The largest PEM file a script may load.
const MAX_PEM_BYTES: u64 = 1 << 20;

impl Session {
    /// Reads `rel`, a file under the `--pki` directory (a path inside it, relative or absolute).
    fn read_pki_file(&self, what: &str, rel: &str) -> Result<String> {
        let Some(root) = &self.pki_root else {
            return Err(Error::Script(format!(
                "{what}: no directory is open to scripts: run with `--pki DIR` to let them read the \
                 PEM files in DIR"
            )));
        };
        let root = root.canonicalize().map_err(Error::io(format!(
            "failed to open the --pki directory {}",
            root.display()
        )))?;
        let path: PathBuf = root.join(rel);
        let real = path.canonicalize().map_err(Error::io(format!(
            "{what}: failed to open {}",
            path.display()
        )))?;
        if !real.starts_with(&root) {
            return Err(Error::Script(format!(
                "{what}: `{rel}` is outside the --pki directory {} (scripts read only there)",
                root.display()
            )));
        }
        // One handle, checked and read: what is read is what was checked. O_NONBLOCK: a FIFO
        // must not hang the run.
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let fail = || Error::io(format!("{what}: failed to read {}", real.display()));
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&real)
            .map_err(fail())?;
        let meta = file.metadata().map_err(fail())?;
        if !meta.is_file() || meta.len() > MAX_PEM_BYTES {
            return Err(Error::Script(format!(
                "{what}: `{rel}` is not a regular file of at most {MAX_PEM_BYTES} bytes"
            )));
        }
        let mut text = String::new();
        file.take(MAX_PEM_BYTES)
            .read_to_string(&mut text)
            .map_err(fail())?;
        Ok(text)
    }

    /// `load_ca(name, cert, key)`.
    pub fn load_ca(&mut self, name: &str, cert: &str, key: Option<&str>) -> Result<Rc<Ca>> {
        let what = format!("load_ca(\"{name}\")");
        let cert_pem = self.read_pki_file(&what, cert)?;
        let key_pem = key.map(|k| self.read_pki_file(&what, k)).transpose()?;
        self.claim_name("CA", name)?;
        let ca = Ca::load(&self.pki_dir, name, &cert_pem, key_pem.as_deref())?;
        self.transcript.line(format!(
            "ca {name}: loaded from {cert}, {}, {}",
            ca.key_kind,
            if key.is_some() {
                "with its key (it signs)"
            } else {
                "without its key (it signs nothing)"
            }
        ));
        Ok(Rc::new(ca))
    }

    /// `load_cert(name, cert, key)`.
    pub fn load_cert(&mut self, name: &str, cert: &str, key: &str) -> Result<Rc<Cert>> {
        let what = format!("load_cert(\"{name}\")");
        let cert_pem = self.read_pki_file(&what, cert)?;
        let key_pem = self.read_pki_file(&what, key)?;
        self.claim_name("certificate", name)?;
        let loaded = Cert::load(&self.pki_dir, name, &cert_pem, &key_pem)?;
        self.note_issued(&loaded, 0);
        self.transcript.line(format!(
            "cert {name}: loaded from {cert}: {}",
            describe_cert(&loaded)
        ));
        Ok(Rc::new(loaded))
    }

    /// The `--pki` directory, if one was given.
    pub fn pki_root(&self) -> Option<&Path> {
        self.pki_root.as_deref()
    }
}
