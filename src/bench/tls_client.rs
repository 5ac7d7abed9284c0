//! The load tool's TLS client settings: trust a given CA file, or (for a self-signed test
//! certificate) verify nothing but the handshake signatures.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust<'a> {
    /// Certificates chaining to the CAs in this PEM file.
    CaFile(&'a Path),
    /// Any certificate (a self-signed test certificate); the handshake signature is still
    /// verified, so the key exchange is real.
    Insecure,
}

/// What every TLS participant connects with.
#[derive(Clone)]
pub struct TlsClient {
    /// The shared client configuration (session resumption off: each participant is a new
    /// client, as in a call).
    pub config: Arc<ClientConfig>,
    /// SNI and the name the certificate must carry.
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish()
    }
}

impl TlsClient {
    /// A client trusting `trust`, naming the server `name` (a DNS name or an IP address).
    pub fn new(trust: Trust<'_>, name: &str) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let mut config = match trust {
            Trust::CaFile(path) => {
                let pem =
                    std::fs::read(path).map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
                let mut roots = RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut &pem[..]) {
                    let cert = cert.map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "--tls-ca {}: no certificate in the file",
                        path.display()
                    ));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
        };
        config.resumption = rustls::client::Resumption::disabled();
        let name = match name.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(name.to_string())
                .map_err(|_| format!("--tls-name {name}: not a DNS name or IP address"))?,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }
}

/// Accepts every certificate but checks the handshake signatures with the provider's
/// algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
