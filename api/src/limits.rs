//! Rate limits: failed authentications per client address and per key
//! prefix, and requests per API key. All answer 429 `RATE_LIMITED` with
//! `Retry-After`.
//!
//! A request with no key, or with one that is not a Proofline key in shape,
//! is answered 401 and charged nothing: it costs no store lookup and no
//! argon2. The failure budgets are charged before any argon2 verification
//! runs: an attempt with a key that is not cached takes a [`Reservation`] on its
//! address's and its prefix's budget first (refused when they are spent,
//! counting the attempts already in flight), and the reservation becomes a
//! charge only if the key turns out wrong. So a flood of wrong secrets for a
//! public prefix costs at most the budget in argon2 work, however many
//! arrive at once, and a success costs nothing. IPv6 addresses count by
//! their /64, which one client usually holds whole. A caller whose key is
//! already known as valid is never held back by these budgets (a shared
//! NAT, a proxy).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, ErrorCode};
use crate::shared_limits::{Bucket as SharedBucket, SharedBudgets};
use crate::state::ApiSettings;

/// Where failures are counted: a client address (IPv6 by its /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self(address),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// A token bucket that counts attempts in flight against what is left.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    in_flight: u32,
    refilled: Instant,
}

/// Failure budgets per key `K`: `burst` failures, refilled at `per_minute`.
struct Budgets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
    burst: f64,
    per_second: f64,
}

impl<K: Eq + Hash + Clone> Budgets<K> {
    fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self {
            buckets: Mutex::default(),
            burst: per_minute,
            per_second: per_minute / 60.0,
        }
    }

    /// Takes one attempt from `key`'s budget, or says how long until one
    /// is free.
    fn reserve(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            in_flight: 0,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled = now;
        let free = bucket.tokens - f64::from(bucket.in_flight);
        if free < 1.0 {
            let missing = 1.0 - free;
            return Err(Duration::from_secs_f64(missing / self.per_second));
        }
        bucket.in_flight += 1;
        Ok(())
    }

    /// Ends an attempt reserved on `key`; a failure spends its token.
    fn settle(&self, key: &K, failed: bool) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(key) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
            if failed {
                bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            }
        }
    }

    /// Forgets buckets that are full and idle.
    fn forget_idle(&self, now: Instant) {
        let full_after = Duration::from_secs_f64(self.burst / self.per_second);
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, b| {
                b.in_flight > 0 || now.saturating_duration_since(b.refilled) < full_after
            });
    }
}

/// Unmatched wallet responses (an unknown state, a JWE that does not
/// decrypt) recorded in the log per minute, whoever sends them: anyone can,
/// so the log must not grow with them beyond this.
pub const UNMATCHED_RECORDS_PER_MINUTE: u32 = 60;

pub struct Limits {
    by_address: Budgets<AddressKey>,
    by_prefix: Budgets<String>,
    per_key: Option<DefaultKeyedRateLimiter<String>>,
    /// Requests to the wallet-facing OpenID4VP endpoints per address.
    per_wallet: Option<DefaultKeyedRateLimiter<AddressKey>>,
    /// Unmatched wallet responses recorded in the log, for all addresses.
    unmatched: governor::DefaultDirectRateLimiter,
    clock: DefaultClock,
    /// With Postgres: the per-key and failure budgets are kept there, one
    /// for every API instance, instead of in this process.
    shared: Option<Arc<SharedBudgets>>,
    failed_auth_per_minute: u32,
    requests_per_key_per_second: u32,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

/// One authentication attempt's hold on the failure budgets. Dropped
/// without [`Reservation::failed`], it costs nothing.
pub struct Reservation {
    limits: Arc<Limits>,
    address: AddressKey,
    prefix: Option<String>,
    failed: bool,
    /// The shared buckets it took a token from (given back on success).
    shared: Vec<SharedBucket>,
}

impl Reservation {
    /// The attempt failed: its tokens are spent.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(shared) = &self.limits.shared {
            if !self.failed
                && !self.shared.is_empty()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let (shared, buckets) = (shared.clone(), std::mem::take(&mut self.shared));
                runtime.spawn(async move {
                    for bucket in &buckets {
                        shared.give_back(bucket).await;
                    }
                });
            }
            return;
        }
        self.limits.by_address.settle(&self.address, self.failed);
        if let Some(prefix) = &self.prefix {
            self.limits.by_prefix.settle(prefix, self.failed);
        }
    }
}

impl Limits {
    pub fn new(settings: &ApiSettings) -> Self {
        let per_key = (settings.requests_per_key_per_second > 0).then(|| {
            let rate = nonzero(settings.requests_per_key_per_second);
            RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(nonzero(rate.get().saturating_mul(2))),
            )
        });
        let per_wallet = (settings.oid4vp_rate_per_minute > 0).then(|| {
            RateLimiter::keyed(Quota::per_minute(nonzero(settings.oid4vp_rate_per_minute)))
        });
        Self {
            by_address: Budgets::new(settings.failed_auth_per_minute),
            by_prefix: Budgets::new(settings.failed_auth_per_minute),
            per_key,
            per_wallet,
            unmatched: RateLimiter::direct(Quota::per_minute(nonzero(
                UNMATCHED_RECORDS_PER_MINUTE,
            ))),
            clock: DefaultClock::default(),
            shared: None,
            failed_auth_per_minute: settings.failed_auth_per_minute.max(1),
            requests_per_key_per_second: settings.requests_per_key_per_second,
        }
    }

    /// Keeps the per-key and failure budgets in Postgres, shared with every
    /// API instance on it.
    pub fn shared(mut self, budgets: SharedBudgets) -> Self {
        self.shared = Some(Arc::new(budgets));
        self
    }

    fn failure_bucket(&self, name: String) -> SharedBucket {
        let per_minute = f64::from(self.failed_auth_per_minute);
        SharedBucket {
            name,
            burst: per_minute,
            per_second: per_minute / 60.0,
        }
    }

    /// The shared reservation: a token of the address's bucket, then of
    /// the prefix's (the address's given back when the prefix refuses).
    async fn reserve_shared(
        self: &Arc<Self>,
        shared: &SharedBudgets,
        address: AddressKey,
        prefix: Option<&str>,
    ) -> Result<Reservation, ApiError> {
        let by_address = self.failure_bucket(format!("auth-address:{}", address.0));
        shared.reserve(&by_address).await.map_err(rate_limited)?;
        let mut taken = vec![by_address];
        if let Some(prefix) = prefix {
            let by_prefix = self.failure_bucket(format!("auth-prefix:{prefix}"));
            if let Err(wait) = shared.reserve(&by_prefix).await {
                shared.give_back(&taken[0]).await;
                return Err(rate_limited(wait));
            }
            taken.push(by_prefix);
        }
        Ok(Reservation {
            limits: self.clone(),
            address,
            prefix: prefix.map(str::to_owned),
            failed: false,
            shared: taken,
        })
    }

    /// Reserves one failure of `address`'s budget and of `prefix`'s (the
    /// presented key's public prefix, when it has one) before the key is
    /// checked; 429 when either is spent.
    pub async fn reserve(
        self: &Arc<Self>,
        address: IpAddr,
        prefix: Option<&str>,
    ) -> Result<Reservation, ApiError> {
        let now = Instant::now();
        let address = AddressKey::of(address);
        if let Some(shared) = &self.shared {
            return self.reserve_shared(shared, address, prefix).await;
        }
        self.by_address
            .reserve(&address, now)
            .map_err(rate_limited)?;
        if let Some(prefix) = prefix
            && let Err(wait) = self.by_prefix.reserve(&prefix.to_owned(), now)
        {
            self.by_address.settle(&address, false);
            return Err(rate_limited(wait));
        }
        Ok(Reservation {
            limits: self.clone(),
            address,
            prefix: prefix.map(str::to_owned),
            failed: false,
            shared: Vec::new(),
        })
    }

    /// Spends one request of a key's budget.
    pub async fn check_key(&self, key_prefix: &str) -> Result<(), ApiError> {
        let Some(per_key) = &self.per_key else {
            return Ok(());
        };
        if let Some(shared) = &self.shared {
            let rate = self.requests_per_key_per_second;
            let bucket = SharedBucket {
                name: format!("requests:{key_prefix}"),
                burst: f64::from(rate) * 2.0,
                per_second: f64::from(rate),
            };
            // A tenth of a second's requests per trip to Postgres.
            return shared
                .spend(&bucket, (rate / 10).max(1))
                .await
                .map_err(rate_limited);
        }
        per_key
            .check_key(&key_prefix.to_owned())
            .map_err(|not_until| rate_limited(not_until.wait_time_from(self.clock.now())))
    }

    /// Spends one request of a wallet address's budget (the OpenID4VP
    /// endpoints, which take no key); the wait when it is spent.
    pub fn check_wallet(&self, address: IpAddr) -> Result<(), Duration> {
        let Some(per_wallet) = &self.per_wallet else {
            return Ok(());
        };
        per_wallet
            .check_key(&AddressKey::of(address))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Whether one more unmatched wallet response may be recorded in the
    /// log now; past [`UNMATCHED_RECORDS_PER_MINUTE`] they are counted only.
    pub fn record_unmatched(&self) -> bool {
        self.unmatched.check().is_ok()
    }

    /// Forgets addresses, prefixes and keys that have been quiet; called
    /// periodically.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        if let Some(shared) = &self.shared {
            shared.forget_idle();
        }
        self.by_address.forget_idle(now);
        self.by_prefix.forget_idle(now);
        if let Some(per_key) = &self.per_key {
            per_key.retain_recent();
        }
        if let Some(per_wallet) = &self.per_wallet {
            per_wallet.retain_recent();
        }
    }
}

fn rate_limited(wait: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        "too many requests; retry after the time in Retry-After",
    )
    .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32) -> Arc<Limits> {
        Arc::new(Limits::new(&ApiSettings {
            failed_auth_per_minute: per_minute,
            ..ApiSettings::default()
        }))
    }

    #[tokio::test]
    async fn failures_beyond_the_budget_are_refused_before_they_are_checked() {
        let limits = limits(3);
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            limits.reserve(address, None).await.unwrap().failed();
        }
        let refused = limits.reserve(address, None).await.err().unwrap();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert!(
            limits.reserve(other, None).await.is_ok(),
            "other addresses are not affected"
        );
    }

    #[tokio::test]
    async fn attempts_in_flight_count_against_the_budget_and_successes_cost_nothing() {
        let limits = limits(3);
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        // Three at once hold the whole budget: a fourth is refused before
        // any of them is checked.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(limits.reserve(address, None).await.unwrap());
        }
        assert!(limits.reserve(address, None).await.is_err());
        // They succeed: nothing is spent.
        drop(held);
        for _ in 0..10 {
            assert!(limits.reserve(address, None).await.is_ok());
        }
    }

    #[tokio::test]
    async fn a_prefix_has_a_budget_across_addresses() {
        let limits = limits(2);
        for n in 0..2u8 {
            let address = IpAddr::from([198, 51, 100, n]);
            limits
                .reserve(address, Some("0123456789abcdef"))
                .await
                .unwrap()
                .failed();
        }
        let elsewhere = IpAddr::from([203, 0, 113, 9]);
        assert!(
            limits
                .reserve(elsewhere, Some("0123456789abcdef"))
                .await
                .is_err()
        );
        assert!(
            limits
                .reserve(elsewhere, Some("fedcba9876543210"))
                .await
                .is_ok()
        );
        // A refusal by the prefix gives the address its reservation back.
        for _ in 0..5 {
            assert!(
                limits
                    .reserve(elsewhere, Some("0123456789abcdef"))
                    .await
                    .is_err()
            );
        }
        assert!(limits.reserve(elsewhere, None).await.is_ok());
    }

    #[tokio::test]
    async fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limits = limits(2);
        for host in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"] {
            limits
                .reserve(host.parse().unwrap(), None)
                .await
                .unwrap()
                .failed();
        }
        assert!(
            limits
                .reserve("2001:db8:1:2::77".parse().unwrap(), None)
                .await
                .is_err()
        );
        assert!(
            limits
                .reserve("2001:db8:1:3::1".parse().unwrap(), None)
                .await
                .is_ok()
        );
        assert_eq!(
            AddressKey::of("::ffff:192.0.2.1".parse().unwrap()),
            AddressKey::of("192.0.2.1".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn each_key_has_its_own_budget() {
        let limits = Limits::new(&ApiSettings {
            requests_per_key_per_second: 2,
            ..ApiSettings::default()
        });
        let mut spent = 0;
        for _ in 0..10 {
            spent += usize::from(limits.check_key("aaaaaaaaaaaaaaaa").await.is_ok());
        }
        assert_eq!(spent, 4, "a burst of twice the rate");
        assert!(limits.check_key("bbbbbbbbbbbbbbbb").await.is_ok());
        let unlimited = Limits::new(&ApiSettings {
            requests_per_key_per_second: 0,
            ..ApiSettings::default()
        });
        for _ in 0..1000 {
            assert!(unlimited.check_key("aaaaaaaaaaaaaaaa").await.is_ok());
        }
    }
}
