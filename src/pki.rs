//! Certificate authorities, leaf certificates and CRLs, made with rcgen and written as PEM files.
//!
//! Knows nothing of Rhai: the script layer turns options maps into [`CaSpec`] and [`CertSpec`].

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

mod kinds;
mod load;
mod renew;
mod validity;
pub use kinds::{KeyKind, Usage};
pub use renew::Replace;
use validity::relative_validity;

/// How far back a certificate's validity starts when the script does not say, so that a small
/// clock difference between us and etcd never makes a fresh certificate "not yet valid".
const BACKDATE: Duration = Duration::minutes(5);

/// The furthest from now, in days, that a validity may start or end (100 years): far enough
/// for any scenario, near enough that no date arithmetic overflows.
pub const MAX_DAYS: i64 = 36_500;

/// Fails unless `value` (the `what` of certificate or CA `name`) lies in `range`.
fn days_in(name: &str, what: &str, value: i64, range: std::ops::RangeInclusive<i64>) -> Result<()> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(Error::Script(format!(
        "`{name}`: {what} must be from {} to {}, got {value}",
        range.start(),
        range.end()
    )))
}

/// What a script asks of a CA.
#[derive(Clone, Debug)]
pub struct CaSpec {
    pub key: KeyKind,
    pub days: i64,
}

impl Default for CaSpec {
    fn default() -> Self {
        CaSpec {
            key: KeyKind::EcP256,
            days: 3650,
        }
    }
}

/// What a script asks of a leaf certificate.
#[derive(Clone, Debug)]
pub struct CertSpec {
    pub cn: String,
    pub sans: Vec<String>,
    pub usage: Vec<Usage>,
    /// Validity start, in days from now; `None` is now (less a few minutes of slack).
    pub not_before_days: Option<i64>,
    /// Validity end, in days from now.
    pub not_after_days: i64,
    /// Validity end in seconds from now, instead of `not_after_days`: a certificate that
    /// expires while the run goes on.
    pub not_after_secs: Option<i64>,
    pub key: KeyKind,
    /// Write the intermediate CAs after the leaf in its certificate file (a full chain), so that
    /// whoever presents it sends them too.
    pub chain: bool,
}

/// A certificate authority: its certificate and key on disk, and the serials it has revoked.
pub struct Ca {
    pub name: String,
    pub key_kind: KeyKind,
    pub days: i64,
    pub cert_path: PathBuf,
    pub crl_path: PathBuf,
    params: CertificateParams,
    key: KeyPair,
    revoked: Mutex<Vec<SerialNumber>>,
    /// For a trust bundle: the CAs it holds (its certificate file has them all). A bundle is
    /// trusted, never a signer in scripts.
    pub bundle_of: Vec<String>,
    /// For an intermediate CA: the name of the CA that signed it.
    pub parent: Option<String>,
    /// The intermediate certificates a leaf it signs sends with itself (PEM): its own and its
    /// parent's, up to and without the root. Empty for a root.
    chain_pem: String,
    /// For a CA read from files (`load_ca`): its certificate (DER), which names it as an issuer,
    /// and whether its key was given (without it, it signs nothing).
    loaded: Option<(Vec<u8>, bool)>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A leaf certificate and its key on disk.
#[derive(Clone, Debug)]
pub struct Cert {
    pub name: String,
    pub cn: String,
    pub sans: Vec<String>,
    pub usage: Vec<Usage>,
    pub key_kind: KeyKind,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The name of the CA that signed it.
    pub issuer: String,
    /// The signing CA's certificate, which a client presenting this certificate would trust.
    pub issuer_cert_path: PathBuf,
    pub serial: Vec<u8>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// Its certificate file holds the intermediate CAs after the leaf.
    pub chained: bool,
}

fn pki_err(e: rcgen::Error) -> Error {
    Error::Pki(e)
}

/// Writes a file; private keys get mode 0600 from the start, never a moment of wider access.
/// Holds the work dir's write lock, so that an interrupted run writes nothing after its teardown.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    let _writes = crate::lifecycle::hold_writes();
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    opts.mode(if private { 0o600 } else { 0o644 });
    let mut f = opts
        .open(path)
        .map_err(Error::io(format!("failed to create {}", path.display())))?;
    f.write_all(contents.as_bytes())
        .map_err(Error::io(format!("failed to write {}", path.display())))
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

impl Ca {
    /// Makes a CA named `name` (also its CN), self-signed or, with a `parent`, an intermediate
    /// signed by it, and writes `<name>.crt`, `<name>.key` and an empty `<name>.crl` into `dir`.
    pub fn create(dir: &Path, name: &str, spec: &CaSpec, parent: Option<&Ca>) -> Result<Ca> {
        if let Some(p) = parent {
            if p.is_bundle() {
                return Err(Error::Script(format!(
                    "ca `{name}`: its parent `{}` is a trust bundle, which signs nothing",
                    p.name
                )));
            }
        }
        days_in(name, "days", spec.days, 1..=MAX_DAYS)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + days(spec.days);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let key = spec.key.generate()?;
        let cert = match parent {
            None => params.self_signed(&key).map_err(pki_err)?,
            Some(p) => {
                params.use_authority_key_identifier_extension = true;
                let issuer = p.issuer()?;
                params.signed_by(&key, &issuer).map_err(pki_err)?
            }
        };
        let chain_pem = match parent {
            None => String::new(),
            Some(p) => format!("{}{}", cert.pem(), p.chain_pem),
        };
        let cert_path = dir.join(format!("{name}.crt"));
        let crl_path = dir.join(format!("{name}.crl"));
        write_file(&cert_path, &cert.pem(), false)?;
        write_file(&dir.join(format!("{name}.key")), &key.serialize_pem(), true)?;
        let ca = Ca {
            name: name.to_owned(),
            key_kind: spec.key,
            days: spec.days,
            cert_path,
            crl_path,
            params,
            key,
            revoked: Mutex::new(Vec::new()),
            bundle_of: Vec::new(),
            parent: parent.map(|p| p.name.clone()),
            chain_pem,
            loaded: None,
        };
        ca.write_crl()?;
        Ok(ca)
    }

    /// A trust bundle named `name`: the certificates of `cas` in one file, for members and
    /// clients that must trust several CAs at once (a CA rotation). Internally it signs as the
    /// first of them (the probe certificate of a cluster that trusts it).
    pub fn bundle(dir: &Path, name: &str, cas: &[&Ca]) -> Result<Ca> {
        let first = cas
            .first()
            .ok_or_else(|| Error::Script(format!("bundle `{name}`: give it at least one CA")))?;
        let mut pem = String::new();
        for ca in cas {
            let text = fs::read_to_string(&ca.cert_path).map_err(Error::io(format!(
                "failed to read {}",
                ca.cert_path.display()
            )))?;
            pem.push_str(&text);
        }
        let cert_path = dir.join(format!("{name}.crt"));
        write_file(&cert_path, &pem, false)?;
        let key = KeyPair::from_pem(&first.key.serialize_pem()).map_err(pki_err)?;
        Ok(Ca {
            name: name.to_owned(),
            key_kind: first.key_kind,
            days: first.days,
            cert_path,
            crl_path: first.crl_path.clone(),
            params: first.params.clone(),
            key,
            revoked: Mutex::new(Vec::new()),
            bundle_of: cas.iter().map(|c| c.name.clone()).collect(),
            parent: None,
            chain_pem: String::new(),
            loaded: None,
        })
    }

    /// The issuer this CA signs as.
    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>> {
        match &self.loaded {
            None => Ok(Issuer::from_params(&self.params, &self.key)),
            Some((_, false)) => Err(Error::Script(format!(
                "ca `{}` was loaded without its key, so it signs nothing: give load_ca its `key`",
                self.name
            ))),
            Some((der, true)) => {
                let der = rustls::pki_types::CertificateDer::from(der.as_slice());
                Issuer::from_ca_cert_der(&der, &self.key).map_err(pki_err)
            }
        }
    }

    /// Whether it can sign: made by the run, or loaded with its key (a bundle cannot).
    pub fn can_sign(&self) -> bool {
        !self.is_bundle() && self.loaded.as_ref().is_none_or(|(_, key)| *key)
    }

    /// Whether this is a trust bundle.
    pub fn is_bundle(&self) -> bool {
        !self.bundle_of.is_empty()
    }

    /// Signs a leaf certificate named `name` and writes `<name>.crt` and `<name>.key` into `dir`.
    pub fn issue(&self, dir: &Path, name: &str, spec: &CertSpec) -> Result<Cert> {
        days_in(
            name,
            "not_after_days",
            spec.not_after_days,
            -MAX_DAYS..=MAX_DAYS,
        )?;
        if let Some(d) = spec.not_before_days {
            days_in(name, "not_before_days", d, -MAX_DAYS..=MAX_DAYS)?;
        }
        // The key first: an RSA key takes a while, and the validity counts from after it.
        let key = spec.key.generate()?;
        let now = OffsetDateTime::now_utc();
        let not_before = match spec.not_before_days {
            Some(d) => now + days(d),
            None => now - BACKDATE,
        };
        let not_after = match spec.not_after_secs {
            Some(s) => now + time::Duration::seconds(s),
            None => now + days(spec.not_after_days),
        };
        if not_after <= not_before {
            return Err(Error::Script(format!(
                "certificate `{name}`: it would end before it starts (not_after_days {} is not after not_before_days {})",
                spec.not_after_days,
                spec.not_before_days.unwrap_or(0)
            )));
        }
        if spec.usage.is_empty() {
            return Err(Error::Script(format!(
                "certificate `{name}`: usage is empty; give \"server\", \"client\" or both"
            )));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.cn.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = spec
            .sans
            .iter()
            .map(|s| san(name, s))
            .collect::<Result<_>>()?;
        params.key_usages = match spec.key {
            KeyKind::EcP256 => vec![KeyUsagePurpose::DigitalSignature],
            KeyKind::Rsa2048 | KeyKind::Loaded(_) => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
        };
        params.extended_key_usages = spec
            .usage
            .iter()
            .map(|u| match u {
                Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
                Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        params.not_before = not_before;
        params.not_after = not_after;
        params.use_authority_key_identifier_extension = true;
        let issuer = self.issuer()?;
        let cert = params.signed_by(&key, &issuer).map_err(pki_err)?;
        let serial = read_serial(cert.der())?;
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        let pem = if spec.chain {
            if self.chain_pem.is_empty() {
                return Err(Error::Script(format!(
                    "certificate `{name}`: `chain` needs an intermediate CA to sign it; `{}` is a \
                     root, and a root is never sent",
                    self.name
                )));
            }
            format!("{}{}", cert.pem(), self.chain_pem)
        } else {
            cert.pem()
        };
        write_file(&cert_path, &pem, false)?;
        write_file(&key_path, &key.serialize_pem(), true)?;
        tracing::debug!(cert = name, serial = %hex(&serial), "issued certificate");
        Ok(Cert {
            name: name.to_owned(),
            cn: spec.cn.clone(),
            sans: spec.sans.clone(),
            usage: spec.usage.clone(),
            key_kind: spec.key,
            not_before,
            not_after,
            issuer: self.name.clone(),
            issuer_cert_path: self.cert_path.clone(),
            serial,
            cert_path,
            key_path,
            chained: spec.chain,
        })
    }

    /// Revokes `cert` and rewrites this CA's CRL file. Returns false if it was revoked already.
    pub fn revoke(&self, cert: &Cert) -> Result<bool> {
        if cert.issuer != self.name {
            return Err(Error::Script(format!(
                "ca `{}` cannot revoke `{}`: it was signed by `{}`",
                self.name, cert.name, cert.issuer
            )));
        }
        {
            let mut revoked = self.revoked.lock().expect("revocation list lock");
            let serial = SerialNumber::from_slice(&cert.serial);
            if revoked.contains(&serial) {
                return Ok(false);
            }
            revoked.push(serial);
        }
        self.write_crl()?;
        Ok(true)
    }

    fn write_crl(&self) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let revoked = self.revoked.lock().expect("revocation list lock");
        let params = CertificateRevocationListParams {
            this_update: now - BACKDATE,
            next_update: now + days(self.days),
            crl_number: SerialNumber::from(revoked.len() as u64 + 1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: serial.clone(),
                    revocation_time: now - BACKDATE,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = self.issuer()?;
        let crl = params.signed_by(&issuer).map_err(pki_err)?;
        write_file(&self.crl_path, &crl.pem().map_err(pki_err)?, false)
    }

    /// How many certificates this CA has revoked.
    pub fn revoked_count(&self) -> usize {
        self.revoked.lock().expect("revocation list lock").len()
    }
}

/// A DNS name or an IP address, told apart by whether it parses as an address.
fn san(cert: &str, s: &str) -> Result<SanType> {
    if let Ok(ip) = s.parse() {
        return Ok(SanType::IpAddress(ip));
    }
    let bad = || {
        Error::Script(format!(
            "certificate `{cert}`: `{s}` is not a DNS name or IP address"
        ))
    };
    if !is_host_name(s) {
        return Err(bad());
    }
    s.try_into().map(SanType::DnsName).map_err(|_| bad())
}

/// Whether `s` is an IP address or a DNS name (letters, digits and `-` in dot-separated labels
/// of at most 63, a leading `*.` allowed): what a certificate can name and a client can dial.
pub fn is_host_name(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let name = s.strip_prefix("*.").unwrap_or(s);
    s.len() <= 253 && name.split('.').all(label_ok)
}

/// The serial number of a certificate in DER.
pub fn read_serial(der: &[u8]) -> Result<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Environment(format!("failed to parse a certificate just made: {e}")))?;
    Ok(cert.tbs_certificate.raw_serial().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cert {
    /// Whether the certificate carries `usage`.
    pub fn has_usage(&self, usage: Usage) -> bool {
        self.usage.contains(&usage)
    }

    /// The validity relative to now, in whole days, as a person would say it:
    /// "valid for 365 days", "expired 1 day ago", "not valid for 2 days yet".
    pub fn validity(&self) -> String {
        relative_validity(self.not_before, self.not_after, OffsetDateTime::now_utc())
    }
}
