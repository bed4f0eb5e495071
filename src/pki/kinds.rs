//! The kinds of keys and the usages a certificate can have, by the names scripts use.

use std::fmt;

use rcgen::KeyPair;

use super::pki_err;
use crate::error::{Error, Result};

/// The key algorithm of a CA or certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256 with SHA-256: fast to generate, the default.
    EcP256,
    /// RSA 2048 with SHA-256, as the tutorial's openssl commands make.
    Rsa2048,
    /// A key read from a file the run did not make (`load_ca`, `load_cert`): "ec" or "rsa".
    Loaded(&'static str),
}

impl KeyKind {
    /// The names scripts use.
    pub const NAMES: &'static [&'static str] = &["ec-p256", "rsa-2048"];

    /// Parses a script's key name.
    pub fn parse(name: &str) -> Option<KeyKind> {
        match name {
            "ec-p256" => Some(KeyKind::EcP256),
            "rsa-2048" => Some(KeyKind::Rsa2048),
            _ => None,
        }
    }

    pub(super) fn generate(self) -> Result<KeyPair> {
        match self {
            KeyKind::Loaded(kind) => Err(Error::Script(format!(
                "a new {kind} key like a loaded one cannot be made: give `key` (\"ec-p256\" or \"rsa-2048\")"
            ))),
            KeyKind::EcP256 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(pki_err)
            }
            KeyKind::Rsa2048 => {
                use rsa::pkcs8::{EncodePrivateKey, LineEnding};
                let key =
                    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| {
                        Error::Environment(format!("failed to generate an RSA key: {e}"))
                    })?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| Error::Environment(format!("failed to encode an RSA key: {e}")))?;
                KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).map_err(pki_err)
            }
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::EcP256 => "ec-p256",
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Loaded(kind) => kind,
        })
    }
}

/// What a certificate may be used for (its extended key usages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication (serverAuth).
    Server,
    /// TLS client authentication (clientAuth): clients, and members dialing their peers.
    Client,
}

impl Usage {
    /// The names scripts use.
    pub const NAMES: &'static [&'static str] = &["server", "client"];

    /// Parses a script's usage name.
    pub fn parse(name: &str) -> Option<Usage> {
        match name {
            "server" => Some(Usage::Server),
            "client" => Some(Usage::Client),
            _ => None,
        }
    }

    /// The name scripts use.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Server => "server",
            Usage::Client => "client",
        }
    }
}
