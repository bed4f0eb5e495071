//! Certificates over time: renewal in place, and which certificate a member serves now.

use std::rc::Rc;

use super::{describe_cert, IdentitySpec, MemberId, Session};
use crate::error::{Error, Result};
use crate::fault::{Fault, OpResult};
use crate::pki::{Ca, Cert, CertSpec, Replace};

impl Session {
    /// Remembers a certificate the run made, so that `served_cert` can name it.
    pub(super) fn note_issued(&mut self, cert: &Cert, renewal: u32) {
        self.issued
            .push((cert.name.clone(), cert.serial.clone(), renewal));
    }

    /// `bundle(name, cas)`: a trust bundle of `cas`.
    pub fn bundle(&mut self, name: &str, cas: &[Rc<Ca>]) -> Result<Rc<Ca>> {
        if let Some(b) = cas.iter().find(|c| c.is_bundle()) {
            return Err(Error::Script(format!(
                "bundle `{name}`: `{}` is a bundle already; give its CAs",
                b.name
            )));
        }
        self.claim_name("bundle", name)?;
        let refs: Vec<&Ca> = cas.iter().map(|c| c.as_ref()).collect();
        let bundle = Ca::bundle(&self.pki_dir, name, &refs)?;
        self.transcript.line(format!(
            "bundle {name}: trusts {}",
            bundle.bundle_of.join(", ")
        ));
        Ok(Rc::new(bundle))
    }

    /// Fails for a trust bundle where a signing CA is needed.
    pub(super) fn signer(ca: &Ca, what: &str) -> Result<()> {
        if ca.is_bundle() {
            return Err(Error::Script(format!(
                "{what}: `{}` is a trust bundle, which signs nothing: use one of its CAs ({})",
                ca.name,
                ca.bundle_of.join(", ")
            )));
        }
        Ok(())
    }

    /// `renew(ca, cert, opts)`: `cert` issued again by `ca` under its name, with a new key, its
    /// files replaced in place (`how`). Members read it at their next handshake.
    pub fn renew(
        &mut self,
        ca: &Ca,
        old: &Cert,
        spec: &CertSpec,
        how: Replace,
    ) -> Result<Rc<Cert>> {
        if !self.names.contains(&old.name) {
            return Err(Error::Script(format!(
                "certificate `{}` was not made by this run",
                old.name
            )));
        }
        Session::signer(ca, "renew")?;
        let new = ca.renew(&self.pki_dir, old, spec, how)?;
        let renewal = self
            .issued
            .iter()
            .filter(|(name, ..)| *name == old.name)
            .map(|(.., n)| *n)
            .max()
            .unwrap_or(0)
            + 1;
        self.note_issued(&new, renewal);
        self.transcript.line(format!(
            "renew {}: {}; renewal {renewal}, files replaced by {}",
            new.name,
            describe_cert(&new),
            how.name()
        ));
        Ok(Rc::new(new))
    }

    /// `served_cert(member, identity)`: the certificate `m` serves on its client port now, by a
    /// handshake of its own; named if this run made it. Returns how it reads.
    pub fn served_cert(&mut self, m: MemberId, id: Option<&IdentitySpec>) -> OpResult<String> {
        let name = self.member_name(m);
        let leaf = self.served_leaf(m, id).map_err(|detail| {
            Fault::Fatal(Error::Environment(format!(
                "served cert of {name}: no certificate seen: {detail}"
            )))
        })?;
        let serial = crate::pki::read_serial(&leaf)?;
        let seen = match self.issued.iter().find(|(_, s, _)| *s == serial) {
            Some((cert, _, 0)) => format!("{cert} (as issued)"),
            Some((cert, _, n)) => format!("{cert} (renewal {n})"),
            None => "a certificate this run did not make".to_owned(),
        };
        self.transcript.line(format!("{name} serves {seen}"));
        Ok(seen)
    }

    /// `served_days_left(member, identity)`: whole days until the certificate the member serves
    /// now expires (negative once it has). A handshake that fails is a rejection, classed from
    /// the client's side.
    pub fn served_days_left(&mut self, m: MemberId, id: Option<&IdentitySpec>) -> OpResult<i64> {
        let op = format!("served certificate of {}", self.member_name(m));
        let leaf = self.served_leaf(m, id).map_err(|detail| {
            let class = crate::etcd::reject::classify_client_error(&detail).unwrap_or(
                if self.is_remote(m) {
                    crate::etcd::reject::Class::RefusedAtHandshake
                } else {
                    crate::etcd::reject::Class::TlsRejected
                },
            );
            Fault::rejected(
                op.clone(),
                crate::etcd::reject::Rejection::unlogged(
                    class,
                    crate::etcd::reject::Witness::Client,
                    detail,
                ),
            )
        })?;
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).map_err(|e| {
            Error::Environment(format!(
                "{op}: the member served no certificate we can read: {e}"
            ))
        })?;
        let left = (cert.validity().not_after.to_datetime() - time::OffsetDateTime::now_utc())
            .whole_days();
        self.transcript.line(if left >= 0 {
            format!("{op}: {left} days left")
        } else {
            format!("{op}: expired {} days ago", -left)
        });
        Ok(left)
    }

    /// The leaf certificate `m` serves now, seen through a handshake of our own as `id`'s
    /// certificate (by default the cluster's probe).
    fn served_leaf(&mut self, m: MemberId, id: Option<&IdentitySpec>) -> Result<Vec<u8>, String> {
        self.ensure_running(m).map_err(|e| e.to_string())?;
        let probe = match id.and_then(|i| i.cert.clone()) {
            Some(c) => c,
            None => Rc::new(self.cluster(m.cluster).probe.clone()),
        };
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| format!("failed to read {}: {e}", p.display()))
        };
        let (cert_pem, key_pem) = (read(&probe.cert_path)?, read(&probe.key_path)?);
        let addr = std::net::SocketAddr::from((self.slot(m).ip, self.slot(m).client_port));
        let dialer = self.dialer(m);
        self.rt.block_on(crate::etcd::served::served_leaf(
            addr,
            &dialer,
            Some((&cert_pem, &key_pem)),
        ))
    }
}
