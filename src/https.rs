//! A small HTTPS server with a certificate authority made on the spot: the
//! demo issuer's (`proofline demo --serve-issuer`), and the tests' issuers.
//! rcgen makes the CA and the server certificate, rustls serves, hyper
//! speaks HTTP; the CA's PEM is what a fetcher is told to trust
//! (`PROOFLINE_FETCH_CA_FILE`). The demo's CA is kept in files, so that a
//! service told to trust it once trusts it on every run.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A certificate authority of its own.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

/// Where [`LocalCa::load_or_create`] keeps a CA, and whether it made it.
pub struct CaFiles {
    /// The certificate, PEM (mode 0644): what clients are told to trust.
    pub certificate: PathBuf,
    /// Its private key, PKCS#8 PEM (mode 0600).
    pub key: PathBuf,
    /// True when this call made the CA (no key was there).
    pub created: bool,
}

/// The CA's parameters: all that signing a leaf reads from them (the
/// subject name, key identifier method, key usages) is a function of
/// `name` alone, so a CA loaded from its key signs as the one created.
fn ca_params(name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    // It signs for this machine only: a CA a service is told to trust
    // (`PROOFLINE_FETCH_CA_FILE`) could otherwise vouch for any issuer's
    // host to whoever reads its key.
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![
            rcgen::GeneralSubtree::DnsName("localhost".into()),
            rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
            rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                [0xff; 16],
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    Ok(params)
}

impl LocalCa {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        Self::from_key(name, KeyPair::generate()?)
    }

    /// A fresh self-signed certificate for `key`.
    fn from_key(name: &str, key: KeyPair) -> anyhow::Result<Self> {
        let params = ca_params(name)?;
        let certificate = params.self_signed(&key)?;
        Ok(Self {
            pem: certificate.pem(),
            der: certificate.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA kept in `dir` (made owner-only, 0700): `ca.key` (0600,
    /// created once, never replaced) and `ca.pem`. A missing `ca.pem`, or
    /// one that is not the key's, is written again for the key.
    pub fn load_or_create(dir: &Path, name: &str) -> anyhow::Result<(Self, CaFiles)> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let files = CaFiles {
            certificate: dir.join("ca.pem"),
            key: dir.join("ca.key"),
            created: false,
        };
        let (key, created) = load_or_create_key(&files.key)?;
        let files = CaFiles { created, ..files };
        let spki = key.subject_public_key_info();
        let kept = std::fs::read(&files.certificate).ok().and_then(|pem| {
            let der = CertificateDer::from_pem_slice(&pem).ok()?;
            let keys = der.windows(spki.len()).any(|w| w == spki.as_slice());
            keys.then(|| (String::from_utf8_lossy(&pem).into_owned(), der))
        });
        let ca = match kept {
            Some((pem, der)) => Self {
                pem,
                der,
                issuer: Issuer::new(ca_params(name)?, key),
            },
            None => {
                let ca = Self::from_key(name, key)?;
                replace_file(&files.certificate, ca.pem.as_bytes(), 0o644)?;
                ca
            }
        };
        Ok((ca, files))
    }

    /// The CA certificate, PEM: what clients trust.
    pub fn pem(&self) -> String {
        self.pem.clone()
    }

    /// A server certificate for `names`, and its key.
    fn leaf(&self, names: &[&str]) -> anyhow::Result<(CertificateDer<'static>, KeyPair)> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(names)?.signed_by(&key, &self.issuer)?;
        Ok((CertificateDer::from(leaf.der().to_vec()), key))
    }

    /// A server certificate for `names` and its PKCS#8 key, both PEM, for
    /// a server that reads files (PostgreSQL, say).
    pub fn leaf_pem(&self, names: &[&str]) -> anyhow::Result<(String, String)> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(names)?.signed_by(&key, &self.issuer)?;
        Ok((leaf.pem(), key.serialize_pem()))
    }

    /// TLS for a server known by `names` (DNS names or IP addresses).
    pub fn server_config(&self, names: &[&str]) -> anyhow::Result<rustls::ServerConfig> {
        let (leaf, key) = self.leaf(names)?;
        let chain = vec![leaf, self.der.clone()];
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

/// The key at `path`, or a new one written there first (0600, exclusively:
/// a temporary file linked to its name, which fails if the name exists, as
/// the service's own secret files are made). True when this call made it.
fn load_or_create_key(path: &Path) -> anyhow::Result<(KeyPair, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                tracing::warn!(path = %path.display(),
                    "the CA key is readable by group or others; chmod 600 it");
            }
            let key = KeyPair::from_pem(&text)
                .with_context(|| format!("{} is not a PKCS#8 PEM private key", path.display()))?;
            return Ok((key, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let key = KeyPair::generate()?;
    let temporary = temporary_beside(path)?;
    write_new(&temporary, key.serialize_pem().as_bytes(), 0o600)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok((key, true)),
        // Another run made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Writes `contents` to `path` (mode `mode`), replacing it atomically.
fn replace_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let temporary = temporary_beside(path)?;
    write_new(&temporary, contents, mode)?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

fn temporary_beside(path: &Path) -> anyhow::Result<PathBuf> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("the OS random source: {e}"))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    Ok(path.with_file_name(format!(".{name}.{}.tmp", hex::encode(random))))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    /// Its certificates are trusted for this machine's names only, by a
    /// client that trusts the CA: not for an issuer's host.
    #[test]
    fn the_ca_vouches_for_this_machine_only() {
        let ca = LocalCa::new("Test CA").unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        for (name, trusted) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("issuer.example", false),
            ("10.0.0.1", false),
        ] {
            let (leaf, _) = ca.leaf(&[name]).unwrap();
            let server = ServerName::try_from(name.to_owned()).unwrap();
            let verdict = verifier.verify_server_cert(&leaf, &[], &server, &[], UnixTime::now());
            assert_eq!(verdict.is_ok(), trusted, "{name}: {verdict:?}");
        }
    }
}
