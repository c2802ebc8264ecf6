//! A small HTTPS server with a certificate authority made on the spot: the
//! demo issuer's (`proofline demo --serve-issuer`), and the tests' issuers.
//! rcgen makes the CA and the server certificate, rustls serves, hyper
//! speaks HTTP; the CA's PEM is what a fetcher is told to trust
//! (`PROOFLINE_FETCH_CA_FILE`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A certificate authority of its own.
pub struct LocalCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl LocalCa {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA certificate, PEM: what clients trust.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// TLS for a server known by `names` (DNS names or IP addresses).
    pub fn server_config(&self, names: &[&str]) -> anyhow::Result<rustls::ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(names)?.signed_by(&key, &*self.issuer)?;
        let chain = vec![
            CertificateDer::from(leaf.der().to_vec()),
            CertificateDer::from(self.issuer.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the server certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Serves `router` over TLS on `listener` until the task is aborted;
/// aborting it closes every connection too (a server that goes down).
pub fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    router: axum::Router,
) -> tokio::task::JoinHandle<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (acceptor, router) = (acceptor.clone(), router.clone());
                    connections.spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let service = TowerToHyperService::new(router);
                        let _ = Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next() => {}
            }
        }
    })
}

/// Binds `address` and serves `router` there with a certificate for
/// `names` from `ca`; the address bound (port 0 picks one).
pub async fn start(
    ca: &LocalCa,
    address: SocketAddr,
    names: &[&str],
    router: axum::Router,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    Ok((bound, serve(listener, ca.server_config(names)?, router)))
}
