//! A PKI the run did not make: a CA and certificates read from PEM files (cfssl, openssl,
//! kubeadm's `/etc/kubernetes/pki/etcd/`, step). They are copied into the work dir and used from
//! there, so the user's files are only ever read.

use std::path::Path;
use std::sync::Mutex;

use rcgen::{CertificateParams, KeyPair};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::{pki_err, write_file, Ca, Cert, KeyKind, Usage};
use crate::error::{Error, Result};

/// The certificates in a PEM text, leaf first, parsed.
fn parse_pem(what: &str, pem: &str) -> Result<Vec<x509_parser::pem::Pem>> {
    let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Script(format!("{what}: not PEM: {e}")))?;
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .collect();
    if certs.is_empty() {
        return Err(Error::Script(format!("{what}: holds no certificate")));
    }
    Ok(certs)
}

fn parse_x509<'a>(what: &str, block: &'a x509_parser::pem::Pem) -> Result<X509Certificate<'a>> {
    block
        .parse_x509()
        .map_err(|e| Error::Script(format!("{what}: not a certificate: {e}")))
}

/// The kind of a certificate's key, as the transcript names it.
fn key_kind(cert: &X509Certificate) -> KeyKind {
    match cert
        .public_key()
        .algorithm
        .algorithm
        .to_id_string()
        .as_str()
    {
        "1.2.840.10045.2.1" => KeyKind::Loaded("ec"),
        "1.2.840.113549.1.1.1" => KeyKind::Loaded("rsa"),
        "1.3.101.112" => KeyKind::Loaded("ed25519"),
        _ => KeyKind::Loaded("other"),
    }
}

/// A key in PKCS#8, as the signer reads it: kubeadm and cfssl write RSA keys in PKCS#1.
fn pkcs8(what: &str, key_pem: &str) -> Result<String> {
    if key_pem.contains("BEGIN RSA PRIVATE KEY") {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(key_pem)
            .map_err(|e| Error::Script(format!("{what}: the RSA key cannot be read: {e}")))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Script(format!("{what}: the RSA key cannot be re-encoded: {e}")))?;
        return Ok(pem.to_string());
    }
    if key_pem.contains("BEGIN EC PRIVATE KEY") {
        return Err(Error::Script(format!(
            "{what}: the key is an EC key in SEC1 form, which is not read yet: convert it with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`"
        )));
    }
    Ok(key_pem.to_owned())
}

/// Reads a private key and checks that it belongs to `cert`.
fn matching_key(what: &str, key_pem: &str, cert: &X509Certificate) -> Result<KeyPair> {
    let key = KeyPair::from_pem(&pkcs8(what, key_pem)?)
        .map_err(|e| Error::Script(format!("{what}: the key cannot be read: {e}")))?;
    if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
        return Err(Error::Script(format!(
            "{what}: the key is not the certificate's (their public keys differ)"
        )));
    }
    Ok(key)
}

fn common_name(cert: &X509Certificate, of_issuer: bool) -> String {
    let name = if of_issuer {
        cert.issuer()
    } else {
        cert.subject()
    };
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_owned()
}

impl Ca {
    /// A CA read from `cert_pem` (and its key, if given: then it signs), as `name`.
    pub fn load(dir: &Path, name: &str, cert_pem: &str, key_pem: Option<&str>) -> Result<Ca> {
        let what = format!("load_ca `{name}`");
        let blocks = parse_pem(&what, cert_pem)?;
        let cert = parse_x509(&what, &blocks[0])?;
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(Error::Script(format!(
                "{what}: the certificate (CN={}) is no CA (its basic constraints do not say CA)",
                common_name(&cert, false)
            )));
        }
        let key = match key_pem {
            Some(k) => matching_key(&what, k, &cert)?,
            // Never used to sign (see `issuer`): only to fill the place.
            None => KeyPair::generate().map_err(pki_err)?,
        };
        let cert_path = dir.join(format!("{name}.crt"));
        let crl_path = dir.join(format!("{name}.crl"));
        write_file(&cert_path, cert_pem, false)?;
        if let Some(k) = key_pem {
            write_file(&dir.join(format!("{name}.key")), k, true)?;
        }
        let days = (cert.validity().not_after.to_datetime() - time::OffsetDateTime::now_utc())
            .whole_days()
            .max(1);
        let ca = Ca {
            name: name.to_owned(),
            key_kind: key_kind(&cert),
            days,
            cert_path,
            crl_path,
            params: CertificateParams::default(),
            key,
            revoked: Mutex::new(Vec::new()),
            bundle_of: Vec::new(),
            parent: None,
            chain_pem: String::new(),
            loaded: Some((blocks[0].contents.clone(), key_pem.is_some())),
        };
        if key_pem.is_some() {
            ca.write_crl()?;
        }
        Ok(ca)
    }
}

impl Cert {
    /// A certificate and its key read from PEM, as `name`. Its file may hold the chain after
    /// the leaf; it is presented as it is.
    pub fn load(dir: &Path, name: &str, cert_pem: &str, key_pem: &str) -> Result<Cert> {
        let what = format!("load_cert `{name}`");
        let blocks = parse_pem(&what, cert_pem)?;
        let cert = parse_x509(&what, &blocks[0])?;
        matching_key(&what, key_pem, &cert)?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for n in &ext.value.general_names {
                match n {
                    GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => sans.push(
                            std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).expect("4 bytes"))
                                .to_string(),
                        ),
                        16 => sans.push(
                            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).expect("16 bytes"))
                                .to_string(),
                        ),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        // A certificate without extended key usages may be used for anything (Go and rustls
        // agree).
        let usage = match cert.extended_key_usage() {
            Ok(Some(eku)) if !eku.value.any => {
                let mut u = Vec::new();
                if eku.value.server_auth {
                    u.push(Usage::Server);
                }
                if eku.value.client_auth {
                    u.push(Usage::Client);
                }
                u
            }
            _ => vec![Usage::Server, Usage::Client],
        };
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        write_file(&cert_path, cert_pem, false)?;
        write_file(&key_path, key_pem, true)?;
        Ok(Cert {
            name: name.to_owned(),
            cn: common_name(&cert, false),
            sans,
            usage,
            key_kind: key_kind(&cert),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            issuer: format!("CN={}", common_name(&cert, true)),
            issuer_cert_path: cert_path.clone(),
            serial: cert.tbs_certificate.raw_serial().to_vec(),
            cert_path,
            key_path,
            chained: blocks.len() > 1,
        })
    }
}
