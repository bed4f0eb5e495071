//! The certificate a member serves now, observed through a real TLS handshake with its client
//! port. Observing is not trusting: the handshake accepts whatever the member presents (and
//! presents the identity given, for members that demand one), and hands back the leaf.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::limits;
use crate::netns::Dialer;

/// Accepts any server certificate: this handshake only looks at it (and a client told to check
/// nothing uses it too). Signatures are still checked: the peer must hold the key.
#[derive(Debug)]
pub(crate) struct Look(Arc<rustls::crypto::CryptoProvider>);

impl Look {
    pub(crate) fn new(provider: Arc<rustls::crypto::CryptoProvider>) -> Look {
        Look(provider)
    }
}

impl ServerCertVerifier for Look {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The leaf certificate (DER) the member at `addr` serves, presenting `identity` (PEM
/// certificate and key) if the member asks for one. Bounded by [`limits::OP_TIMEOUT`].
pub async fn served_leaf(
    addr: SocketAddr,
    dialer: &Dialer,
    identity: Option<(&str, &str)>,
) -> Result<Vec<u8>, String> {
    let config = super::tls::client_config(
        &super::tls::Trust::Nothing,
        identity,
        &super::tls::TlsParams::default(),
        &[],
    )?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::from(addr.ip());
    let look = async {
        let socket = dialer.socket().map_err(|e| e.to_string())?;
        let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| "the member presented no certificate".to_owned())
    };
    tokio::time::timeout(limits::OP_TIMEOUT, look)
        .await
        .map_err(|_| format!("no handshake within {:?}", limits::OP_TIMEOUT))?
}
