//! TLS client settings shared by the IMAP connections: rustls with the ring provider,
//! trusting either the public web PKI roots or the CA file the configuration names.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the CA file {path} holds no PEM certificate")]
    EmptyCaFile { path: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration that verifies certificates against `ca_file` (when given) or the
/// web PKI roots. Verification is never switched off.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|e| TlsError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| TlsError::CaFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                roots.add(cert)?;
                added += 1;
            }
            if added == 0 {
                return Err(TlsError::EmptyCaFile { path: shown });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What to do about a TLS failure, for the error messages of IMAP and SMTP: an untrusted or
/// mismatched certificate names the `ca_file` setting (verification itself is never switched
/// off); any other failure gets no hint (empty).
pub fn hint(error: &str) -> &'static str {
    if error.contains("UnknownIssuer") || error.contains("invalid peer certificate") {
        if error.contains("NotValidForName") {
            " (the server's certificate does not name this host: connect by a name it holds)"
        } else {
            " (the server's certificate is not signed by a trusted CA: set ca_file to the CA that signed it; verification is never switched off)"
        }
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_issuer_points_at_ca_file() {
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("ca_file"));
        assert!(hint("invalid peer certificate: NotValidForName").contains("name"));
        assert_eq!(hint("connection reset by peer"), "");
    }
}
