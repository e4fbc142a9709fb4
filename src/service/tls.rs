//! TLS with rustls: certificate and key from files, optional client CA (mutual TLS), reloaded
//! without restart when the files change (Kubernetes Secret volumes update through a symlink
//! swap, which is why this polls content rather than watching inodes).

use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsConfig;

fn server_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("{}: {e}", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?
            {
                roots
                    .add(c.map_err(|e| format!("{}: {e}", ca.display()))?)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            // Request a client certificate but do not require one: probes and token callers connect
            // without; a presented certificate must verify, and then authenticates (TlsInfo).
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The initial TLS configuration.
pub(super) fn config(tls: &TlsConfig) -> Result<RustlsConfig, String> {
    Ok(RustlsConfig::from_config(Arc::new(server_config(tls)?)))
}

fn files_digest(tls: &TlsConfig) -> Vec<u8> {
    let mut all = Vec::new();
    for p in [Some(&tls.cert), Some(&tls.key), tls.client_ca.as_ref()]
        .into_iter()
        .flatten()
    {
        all.extend(std::fs::read(p).unwrap_or_default());
    }
    crate::reference::Digest::sha256_of(&all).to_bytes()
}

/// Re-reads the files every 10 s; a changed pair that loads replaces the configuration for new
/// connections, one that does not is logged and ignored.
pub(super) fn spawn_reload(tls: TlsConfig, current: RustlsConfig) {
    tokio::spawn(async move {
        let mut last = files_digest(&tls);
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let now = files_digest(&tls);
            if now == last {
                continue;
            }
            match server_config(&tls) {
                Ok(c) => {
                    current.reload_from_config(Arc::new(c));
                    last = now;
                    tracing::info!("TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the previous certificate")
                }
            }
        }
    });
}
