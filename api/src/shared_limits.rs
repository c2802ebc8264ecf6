//! Rate-limit budgets shared by every API instance on one Postgres: one
//! token bucket per API key (requests) and per client address and key
//! prefix (failed authentications), in table `rate_limit_buckets`, taken
//! from by `rate_limit_take()` under the row's lock (migration
//! `20261204000001_rate_limits`).
//!
//! A request must not cost a round trip, so an instance takes a key's
//! tokens a tenth of a second's worth at a time and spends them locally for
//! up to a second ([`LEASE`]); what it took and did not spend is lost, never
//! given to another instance twice, so together the instances admit no
//! more than the one budget. With the database down (the store's breaker
//! says so) requests are let through at once, unlimited, rather than wait
//! for a connection. A bucket found empty is remembered until it
//! has a token again, so a flood of refused requests costs Postgres
//! nothing. Failure budgets are taken one token per attempt (they are
//! charged only for keys not known good, before argon2), and a success
//! gives its token back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proofline_commands::store::breaker::Breaker;
use sqlx::PgPool;

/// How long tokens taken from Postgres may be spent locally.
pub const LEASE: Duration = Duration::from_secs(1);

/// A bucket: its name, size and refill rate (tokens per second).
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub burst: f64,
    pub per_second: f64,
}

#[derive(Debug)]
enum Local {
    /// Tokens taken and not yet spent, until the lease ends.
    Held { tokens: u32, until: Instant },
    /// The bucket was empty: refused until then.
    Empty { until: Instant },
}

pub struct SharedBudgets {
    pool: PgPool,
    breaker: Breaker,
    local: Mutex<HashMap<String, Local>>,
}

impl SharedBudgets {
    /// Budgets in the database of `pool`, whose server `breaker` watches
    /// (the store's, so both know the database gone at once).
    pub fn new(pool: PgPool, breaker: Breaker) -> Self {
        Self {
            pool,
            breaker,
            local: Mutex::default(),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, Local>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spends one token of `bucket`, taking `batch` from Postgres when none
    /// is held here; the wait until one is free when the bucket is empty.
    /// Postgres unreachable: the request is let through (a limit is no
    /// reason to refuse service) and the failure logged.
    pub async fn spend(&self, bucket: &Bucket, batch: u32) -> Result<(), Duration> {
        let now = Instant::now();
        match self.local().get_mut(&bucket.name) {
            Some(Local::Held { tokens, until }) if *tokens > 0 && *until > now => {
                *tokens -= 1;
                return Ok(());
            }
            Some(Local::Empty { until }) if *until > now => return Err(*until - now),
            _ => {}
        }
        let (granted, remaining) = match self.take(bucket, batch.max(1)).await {
            Ok(answer) => answer,
            Err(error) => {
                // The breaker has said so once already.
                if !self.breaker.is_down() {
                    tracing::warn!(%error, "shared rate limits unavailable; not limiting");
                }
                return Ok(());
            }
        };
        let now = Instant::now();
        if granted == 0 {
            let wait = Duration::from_secs_f64(
                ((1.0 - remaining).max(0.0) / bucket.per_second).clamp(0.001, 3600.0),
            );
            self.local()
                .insert(bucket.name.clone(), Local::Empty { until: now + wait });
            return Err(wait);
        }
        self.local().insert(
            bucket.name.clone(),
            Local::Held {
                tokens: granted - 1,
                until: now + LEASE,
            },
        );
        Ok(())
    }

    /// Takes one token for an attempt (no local batch: each failure counts
    /// where every instance sees it); the wait when there is none.
    pub async fn reserve(&self, bucket: &Bucket) -> Result<(), Duration> {
        let now = Instant::now();
        if let Some(Local::Empty { until }) = self.local().get(&bucket.name)
            && *until > now
        {
            return Err(*until - now);
        }
        self.local().remove(&bucket.name);
        self.spend(bucket, 1).await
    }

    /// Gives back the token of an attempt that did not fail.
    pub async fn give_back(&self, bucket: &Bucket) {
        let give = sqlx::query(
            "UPDATE rate_limit_buckets SET tokens = LEAST($2, tokens + 1) WHERE bucket = $1",
        )
        .bind(&bucket.name)
        .bind(bucket.burst)
        .execute(&self.pool);
        if let Err(error) = self.breaker.run(give).await
            && !self.breaker.is_down()
        {
            tracing::warn!(%error, "cannot give a rate-limit token back");
        }
        self.local().remove(&bucket.name);
    }

    async fn take(&self, bucket: &Bucket, want: u32) -> Result<(u32, f64), sqlx::Error> {
        let take = sqlx::query_as("SELECT granted, remaining FROM rate_limit_take($1, $2, $3, $4)")
            .bind(&bucket.name)
            .bind(bucket.burst)
            .bind(bucket.per_second)
            .bind(i32::try_from(want).unwrap_or(i32::MAX))
            .fetch_one(&self.pool);
        let (granted, remaining): (i32, f64) = self.breaker.run(take).await?;
        Ok((u32::try_from(granted).unwrap_or(0), remaining))
    }

    /// Forgets local leases and refusals that have ended.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.local().retain(|_, l| match l {
            Local::Held { until, .. } | Local::Empty { until } => *until > now,
        });
    }
}
