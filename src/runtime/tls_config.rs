//! TLS settings and certificates that can be replaced while the relay runs.
//!
//! The certificate lives behind a resolver that every handshake asks, so a reload (SIGUSR2, or a
//! change on disk from cert-manager or certbot) affects new handshakes only and live TLS
//! sessions keep going. A new pair that does not load leaves the old one in place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::crypto::ring;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use thiserror::Error;

/// Why a certificate pair could not be loaded.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("{0}: no PEM private key found")]
    NoKey(PathBuf),
    /// The key is of a type rustls cannot sign with.
    #[error("{path}: unsupported private key: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate: {0}")]
    Mismatch(String),
}

/// ALPN protocol ids of STUN/TURN (RFC 7443).
const ALPN: [&[u8]; 2] = [b"stun.turn", b"stun.nat-discovery"];

/// The current certificate, swappable at run time.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    loaded_mtimes: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl CertStore {
    /// Loads the pair; start-up fails when it does not load.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertStore, TlsError> {
        let key = load_pair(cert_path, key_path)?;
        Ok(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
            loaded_mtimes: Mutex::new(mtimes(cert_path, key_path)),
        })
    }

    /// Reloads the pair from disk. On failure the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = mtimes(&self.cert_path, &self.key_path);
        let key = load_pair(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        *self.loaded_mtimes.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        Ok(())
    }

    /// Whether either file changed on disk since the last (attempted) load.
    pub fn changed_on_disk(&self) -> bool {
        let now = mtimes(&self.cert_path, &self.key_path);
        let mut seen = self.loaded_mtimes.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == now {
            return false;
        }
        // Remember the new stamps even if the reload fails, so a broken file is reported once.
        *seen = now;
        true
    }

    /// When the certificate in use expires, seconds since the Unix epoch.
    pub fn not_after(&self) -> Option<i64> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        current
            .cert
            .first()
            .and_then(|leaf| super::cert_expiry::not_after(leaf.as_ref()))
    }

    /// The certificate pair's paths, for logs.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.cert_path, &self.key_path)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3 (only 1.3 with `tls13_only`), ALPN
/// `stun.turn` when the client offers ALPN.
pub fn server_config(store: Arc<CertStore>, tls13_only: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey(key_path.to_path_buf()))?;
    let signing = ring::sign::any_supported_type(&key).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    Ok(certified)
}

fn mtimes(a: &Path, b: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(a), m(b))
}
