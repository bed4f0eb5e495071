//! The client side of TLS, made here rather than by tonic: the versions and cipher suites a
//! client offers, what it trusts (a CA file, the system's roots, or nothing it checks), and the
//! certificate chain it presents. Both the gRPC client and the HTTP client use it.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ProtocolVersion, SupportedCipherSuite, SupportedProtocolVersion};

/// A TLS protocol version a script can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    V12,
    V13,
}

impl TlsVersion {
    /// What scripts write: "1.2" or "1.3".
    pub fn parse(s: &str) -> Option<TlsVersion> {
        match s {
            "1.2" => Some(TlsVersion::V12),
            "1.3" => Some(TlsVersion::V13),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::V12 => "1.2",
            TlsVersion::V13 => "1.3",
        }
    }

    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::V12 => &rustls::version::TLS12,
            TlsVersion::V13 => &rustls::version::TLS13,
        }
    }

    /// The version a handshake settled on, as scripts name it.
    pub fn from_protocol(v: ProtocolVersion) -> Option<TlsVersion> {
        match v {
            ProtocolVersion::TLSv1_2 => Some(TlsVersion::V12),
            ProtocolVersion::TLSv1_3 => Some(TlsVersion::V13),
            _ => None,
        }
    }
}

/// What a client trusts to sign the server's certificate.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The CA certificates in this PEM (a CA, an intermediate, or a bundle).
    Pem(String),
    /// The machine's own trust store, as a client given no CA file would use.
    #[default]
    System,
    /// Nothing is checked: any certificate for any name (etcdctl's
    /// `--insecure-skip-tls-verify`).
    Nothing,
}

/// How a client speaks TLS beyond its certificate: versions and cipher suites.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsParams {
    pub min: Option<TlsVersion>,
    pub max: Option<TlsVersion>,
    /// Cipher suite names (Go's or IANA's: `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`,
    /// `TLS_AES_128_GCM_SHA256`); `None` offers every suite.
    pub cipher_suites: Option<Vec<String>>,
}

/// Every cipher suite the client can offer, by the name scripts use.
pub fn suite_names() -> Vec<String> {
    rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .map(suite_name)
        .collect()
}

/// A suite as Go and etcd's `--cipher-suites` name it (TLS 1.3 suites without rustls's "13").
fn suite_name(s: &SupportedCipherSuite) -> String {
    format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1)
}

/// The suite named `name`, if the client can offer it.
pub fn suite(name: &str) -> Option<SupportedCipherSuite> {
    rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .find(|s| suite_name(s) == name)
        .copied()
}

/// A rustls client configuration: `trust`, presenting `identity` (a PEM chain, leaf first, and
/// its key) if given, offering `params`, and naming `alpn` protocols.
pub fn client_config(
    trust: &Trust,
    identity: Option<(&str, &str)>,
    params: &TlsParams,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &params.cipher_suites {
        provider.cipher_suites = names
            .iter()
            .map(|n| suite(n).ok_or_else(|| format!("cipher suite {n} is not one the client has")))
            .collect::<Result<_, _>>()?;
    }
    let versions: Vec<&'static SupportedProtocolVersion> = [TlsVersion::V12, TlsVersion::V13]
        .into_iter()
        .filter(|v| params.min.is_none_or(|m| *v >= m) && params.max.is_none_or(|m| *v <= m))
        .map(TlsVersion::rustls)
        .collect();
    if versions.is_empty() {
        return Err("no TLS version lies between the minimum and the maximum".into());
    }
    let provider = Arc::new(provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = match trust {
        Trust::Pem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("reading the trusted CA: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("adding the trusted CA: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the trusted CA file holds no certificate".into());
            }
            builder.with_root_certificates(roots)
        }
        Trust::System => {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, errors = found.errors.len(), "system trust store");
            builder.with_root_certificates(roots)
        }
        Trust::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(super::served::Look::new(provider))),
    };
    let mut config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("reading the client certificate: {e}"))?;
            if chain.is_empty() {
                return Err("the client certificate file holds no certificate".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("reading the client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
