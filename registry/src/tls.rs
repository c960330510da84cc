//! HTTP(S) clients: one trusting the system's roots, and one per host with its own CA file.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The HTTP client type used for every request.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The system's root certificates (none when the system has none).
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The certificates in the PEM file `path`; an error when it holds none usable.
pub fn read_ca_file(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| io::Error::other(format!("ca file {}: {e}", path.display())))?;
    let mut store = RootCertStore::empty();
    let (usable, _) = store.add_parsable_certificates(certs.iter().cloned());
    if usable == 0 {
        return Err(io::Error::other(format!(
            "ca file {}: no usable certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// A client speaking HTTP and HTTPS, verifying servers against `roots` (those rustls cannot
/// use are skipped); connecting is bounded by `timeout`.
pub fn client(roots: &[CertificateDer<'static>], timeout: Duration) -> io::Result<HttpClient> {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(roots.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(store)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
