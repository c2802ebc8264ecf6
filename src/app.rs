//! Opening the event store the configuration names.

use std::sync::Arc;

use proofline_commands::OpenError;
use proofline_commands::migrate;
use proofline_commands::store::EventStore;
use proofline_commands::store::postgres::{self, PgEventStore, PgStoreOptions};
use proofline_commands::store::sqlite::{self, SqliteEventStore};

use crate::config::{Config, StoreLocation};

/// What to do about migrations when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations.
    Apply,
    /// Refuse a schema that is not exactly this binary's.
    RequireCurrent,
}

/// Creates the data directory (owner-only) if it is missing.
pub fn ensure_data_dir(config: &Config) -> Result<(), OpenError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .map_err(|e| OpenError::DataDir {
            path: config.data_dir.display().to_string(),
            reason: e.to_string(),
        })
}

pub async fn open_store(
    config: &Config,
    migrations: Migrations,
) -> Result<Arc<dyn EventStore>, OpenError> {
    match &config.store {
        StoreLocation::Embedded { path } => {
            ensure_data_dir(config)?;
            let pool = sqlite::connect_pool(path).await?;
            match migrations {
                Migrations::Apply => migrate::apply_sqlite(&pool).await?,
                Migrations::RequireCurrent => migrate::check_sqlite(&pool).await?,
            }
            Ok(Arc::new(SqliteEventStore::open(pool, path).await?))
        }
        StoreLocation::Postgres {
            url,
            max_connections,
        } => {
            let options = PgStoreOptions {
                max_connections: *max_connections,
                ..PgStoreOptions::default()
            };
            let pool = postgres::connect_pool(url, &options).await?;
            match migrations {
                Migrations::Apply => migrate::apply_postgres(&pool).await?,
                Migrations::RequireCurrent => migrate::check_postgres(&pool).await?,
            }
            Ok(Arc::new(PgEventStore::open(pool).await?))
        }
    }
}

/// `proofline migrate`: applies pending migrations and closes.
pub async fn migrate_only(config: &Config) -> Result<(), OpenError> {
    match &config.store {
        StoreLocation::Embedded { path } => {
            ensure_data_dir(config)?;
            let pool = sqlite::connect_pool(path).await?;
            migrate::apply_sqlite(&pool).await?;
            pool.close().await;
        }
        StoreLocation::Postgres { url, .. } => {
            let pool = postgres::connect_pool(url, &PgStoreOptions::default()).await?;
            migrate::apply_postgres(&pool).await?;
            pool.close().await;
        }
    }
    Ok(())
}

/// The read models' database: a SQLite file beside the embedded log, or
/// the schema `proofline_read` of `DATABASE_URL`.
pub async fn open_read_models(
    config: &Config,
) -> Result<proofline_projections::db::ReadDb, proofline_projections::db::ReadError> {
    use proofline_projections::db::ReadDb;
    match &config.store {
        StoreLocation::Embedded { .. } => {
            ReadDb::sqlite(&config.data_dir.join("read_models.sqlite")).await
        }
        StoreLocation::Postgres {
            url,
            max_connections,
        } => {
            use secrecy::ExposeSecret;
            ReadDb::postgres(url.expose_secret(), (*max_connections / 2).max(2)).await
        }
    }
}

/// The read models on the replica of `DATABASE_READ_URL`, if one is set.
pub async fn open_read_replica(
    config: &Config,
) -> Result<Option<proofline_projections::db::ReadDb>, proofline_projections::db::ReadError> {
    use secrecy::ExposeSecret;
    let (
        Some(url),
        StoreLocation::Postgres {
            max_connections, ..
        },
    ) = (&config.read_replica_url, &config.store)
    else {
        return Ok(None);
    };
    proofline_projections::db::ReadDb::postgres_replica(
        url.expose_secret(),
        (*max_connections / 2).max(2),
    )
    .await
    .map(Some)
}

/// The OpenID4VP verifier's identity (its `client_id` and the key that
/// signs request objects) and settings, as configured. The did:key
/// verifier key file is created on first start (mode 0600).
pub fn verifier_identity(
    config: &Config,
    listening: std::net::SocketAddr,
) -> anyhow::Result<(
    proofline_commands::oid4vp::identity::VerifierIdentity,
    proofline_commands::oid4vp::FlowSettings,
)> {
    use anyhow::Context;
    use proofline_commands::oid4vp::identity::{ClientIdPrefix, VerifierIdentity};

    use crate::config::ClientIdKind;
    let public_url = match &config.oid4vp.public_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&format!("http://127.0.0.1:{}/", listening.port()))?,
    };
    let settings = proofline_commands::oid4vp::FlowSettings {
        public_url,
        result_ttl_seconds: config.oid4vp.result_ttl_seconds,
    };
    let x509 = |prefix: ClientIdPrefix, name: Option<&str>| {
        let (Some(chain), Some(key)) =
            (&config.oid4vp.x509_chain_file, &config.oid4vp.x509_key_file)
        else {
            anyhow::bail!("an x509 client_id needs a chain file and a key file");
        };
        VerifierIdentity::x509_from_files(prefix, chain, key, name)
            .context("cannot use the OpenID4VP x509 chain and key")
    };
    let identity = match &config.oid4vp.client_id {
        ClientIdKind::DidKey => {
            let path = &config.oid4vp.verifier_key_file;
            let (identity, created) = VerifierIdentity::did_key_from_file(path)
                .with_context(|| format!("cannot use the verifier key {}", path.display()))?;
            if created {
                tracing::info!(path = %path.display(), "created the OpenID4VP verifier key");
            }
            identity
        }
        ClientIdKind::X509Hash => x509(ClientIdPrefix::X509Hash, None)?,
        ClientIdKind::X509SanDns(name) => x509(ClientIdPrefix::X509SanDns, name.as_deref())?,
        ClientIdKind::RedirectUri => {
            let response_uri = format!(
                "{}/oid4vp/response",
                settings.public_url.as_str().trim_end_matches('/')
            );
            VerifierIdentity::redirect_uri(&response_uri)
        }
    };
    // §5.9.3: a wallet that does not already trust the verifier accepts a
    // response_uri only on the host the client_id names.
    if let Some(name) = identity.client_id().strip_prefix("x509_san_dns:")
        && settings.public_url.host_str() != Some(name)
    {
        tracing::warn!(client_id = %identity.client_id(), public_url = %settings.public_url,
            "the public URL's host is not the x509_san_dns name: only wallets that trust this \
             verifier through its certificate will answer");
    }
    Ok((identity, settings))
}
