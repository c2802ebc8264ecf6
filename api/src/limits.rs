//! Rate limits: failed authentications per client address, and requests per
//! API key. Both answer 429 `RATE_LIMITED` with `Retry-After`.
//!
//! An address that is over its failure budget is refused before any argon2
//! verification runs, so guessing keys costs the guesser, not our CPU; a
//! caller whose key is already cached is not held back by it (a shared NAT).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, ErrorCode};
use crate::state::ApiSettings;

pub struct Limits {
    failed_auth: DefaultKeyedRateLimiter<IpAddr>,
    per_key: Option<DefaultKeyedRateLimiter<String>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    pub fn new(settings: &ApiSettings) -> Self {
        let failures = nonzero(settings.failed_auth_per_minute);
        let per_key = (settings.requests_per_key_per_second > 0).then(|| {
            let rate = nonzero(settings.requests_per_key_per_second);
            RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(nonzero(rate.get().saturating_mul(2))),
            )
        });
        Self {
            failed_auth: RateLimiter::keyed(Quota::per_minute(failures).allow_burst(failures)),
            per_key,
            blocked: Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    /// Refuses an address that used up its failure budget (without spending
    /// more of it).
    pub fn check_blocked(&self, address: IpAddr) -> Result<(), ApiError> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&address) {
            Some(until) if *until > Instant::now() => Err(rate_limited(*until - Instant::now())),
            Some(_) => {
                blocked.remove(&address);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication; the answer to it is a 401, or a 429
    /// once the address is over its budget.
    pub fn record_failure(&self, address: IpAddr, failure: ApiError) -> ApiError {
        match self.failed_auth.check_key(&address) {
            Ok(()) => failure,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                self.blocked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(address, Instant::now() + wait);
                rate_limited(wait)
            }
        }
    }

    /// Spends one request of a key's budget.
    pub fn check_key(&self, key_prefix: &str) -> Result<(), ApiError> {
        let Some(per_key) = &self.per_key else {
            return Ok(());
        };
        per_key
            .check_key(&key_prefix.to_owned())
            .map_err(|not_until| rate_limited(not_until.wait_time_from(self.clock.now())))
    }

    /// Forgets addresses and keys that have been quiet; called periodically.
    pub fn forget_idle(&self) {
        self.failed_auth.retain_recent();
        if let Some(per_key) = &self.per_key {
            per_key.retain_recent();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

fn rate_limited(wait: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        "too many requests; retry after the time in Retry-After",
    )
    .with_retry_after(wait.as_secs_f64().ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn failures_beyond_the_budget_become_429_and_block_the_address() {
        let limits = Limits::new(&ApiSettings {
            failed_auth_per_minute: 3,
            ..ApiSettings::default()
        });
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let unauthorized = || ApiError::new(ErrorCode::BadCredentials, "no");
        for _ in 0..3 {
            assert_eq!(
                limits.record_failure(address, unauthorized()).status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let refused = limits.record_failure(address, unauthorized());
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert!(limits.check_blocked(address).is_err());
        assert!(
            limits.check_blocked(other).is_ok(),
            "other addresses are not affected"
        );
    }

    #[test]
    fn each_key_has_its_own_budget() {
        let limits = Limits::new(&ApiSettings {
            requests_per_key_per_second: 2,
            ..ApiSettings::default()
        });
        let spent = (0..10)
            .filter(|_| limits.check_key("aaaaaaaaaaaaaaaa").is_ok())
            .count();
        assert_eq!(spent, 4, "a burst of twice the rate");
        assert!(limits.check_key("bbbbbbbbbbbbbbbb").is_ok());
        let unlimited = Limits::new(&ApiSettings {
            requests_per_key_per_second: 0,
            ..ApiSettings::default()
        });
        assert!((0..1000).all(|_| unlimited.check_key("aaaaaaaaaaaaaaaa").is_ok()));
    }
}
