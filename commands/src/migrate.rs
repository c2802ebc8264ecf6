//! Migrations, embedded in the binary, one folder per backend under
//! `migrations/`. `proofline serve` applies pending ones at start unless
//! told `--no-migrate`, in which case a schema that is behind (or ahead of)
//! this binary refuses the start instead.

use std::collections::BTreeSet;

use sqlx::migrate::Migrator;
use sqlx::{PgPool, SqlitePool};

use crate::store::error::OpenError;

pub static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");
pub static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");

pub async fn apply_postgres(pool: &PgPool) -> Result<(), OpenError> {
    Ok(POSTGRES.run(pool).await?)
}

pub async fn apply_sqlite(pool: &SqlitePool) -> Result<(), OpenError> {
    Ok(SQLITE.run(pool).await?)
}

/// Refuses a Postgres schema that is not exactly this binary's.
pub async fn check_postgres(pool: &PgPool) -> Result<(), OpenError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(crate::StoreError::from)?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(crate::StoreError::from)?
    } else {
        Vec::new()
    };
    compare(&POSTGRES, &applied)
}

/// Refuses a SQLite schema that is not exactly this binary's.
pub async fn check_sqlite(pool: &SqlitePool) -> Result<(), OpenError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .map_err(crate::StoreError::from)?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(crate::StoreError::from)?
    } else {
        Vec::new()
    };
    compare(&SQLITE, &applied)
}

fn compare(migrator: &Migrator, applied: &[i64]) -> Result<(), OpenError> {
    let known: BTreeSet<i64> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect();
    let applied: BTreeSet<i64> = applied.iter().copied().collect();
    if let Some(version) = applied.difference(&known).next() {
        return Err(OpenError::SchemaAhead { version: *version });
    }
    let pending = known.difference(&applied).count();
    if pending > 0 {
        return Err(OpenError::SchemaBehind { pending });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&POSTGRES), versions(&SQLITE));
        assert!(!versions(&POSTGRES).is_empty());
    }

    #[test]
    fn compare_reports_behind_and_ahead() {
        let all: Vec<i64> = SQLITE.iter().map(|m| m.version).collect();
        assert!(compare(&SQLITE, &all).is_ok());
        assert!(
            matches!(compare(&SQLITE, &[]), Err(OpenError::SchemaBehind { pending }) if pending == all.len())
        );
        let mut ahead = all.clone();
        ahead.push(99_999_999_999_999);
        assert!(matches!(
            compare(&SQLITE, &ahead),
            Err(OpenError::SchemaAhead {
                version: 99_999_999_999_999
            })
        ));
    }
}
