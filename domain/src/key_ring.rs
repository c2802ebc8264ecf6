//! A principal's API keys: the current one and at most one previous key in
//! its grace period. Lenders and auditors share these rules:
//!
//! - only the current key rotates or revokes;
//! - a rotation gives the current key a grace of 0 to 7 days; a second
//!   rotation during a grace drops the key still in it;
//! - revoking ends the previous key now; the current key cannot be revoked
//!   (the principal would lock itself out), only rotated away.

use chrono::Duration;

use crate::log::Timestamp;
use crate::values::KeyPrefix;

/// The longest grace a rotated key keeps.
pub const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;
/// The grace when none is named.
pub const DEFAULT_GRACE_SECONDS: u64 = 24 * 3600;

/// A grace period: 0 to 7 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriod(u64);

impl GracePeriod {
    pub fn seconds(seconds: u64) -> Result<Self, KeyRingError> {
        if seconds > MAX_GRACE_SECONDS {
            return Err(KeyRingError::GraceTooLong {
                max_seconds: MAX_GRACE_SECONDS,
            });
        }
        Ok(Self(seconds))
    }

    pub fn as_seconds(&self) -> u64 {
        self.0
    }
}

impl Default for GracePeriod {
    fn default() -> Self {
        Self(DEFAULT_GRACE_SECONDS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub prefix: KeyPrefix,
    pub issued_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    pub prefix: KeyPrefix,
    pub issued_at: Timestamp,
    pub valid_until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error("only the current key may rotate or revoke keys")]
    NotCurrentKey,
    #[error("the grace period is at most {max_seconds} seconds")]
    GraceTooLong { max_seconds: u64 },
    #[error("the current key cannot be revoked; rotate it first")]
    CannotRevokeCurrentKey,
    #[error("no such key in its grace period")]
    KeyNotFound,
}

/// What a rotation decided, for the aggregate's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub previous_prefix: KeyPrefix,
    pub previous_valid_until: Timestamp,
    /// The key that was still in its grace and is dropped now.
    pub dropped_prefix: Option<KeyPrefix>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    pub current: Option<Key>,
    pub previous: Option<PreviousKey>,
}

impl KeyRing {
    pub fn is_current(&self, prefix: &str) -> bool {
        self.current
            .as_ref()
            .is_some_and(|k| k.prefix.as_str() == prefix)
    }

    /// `Some(until)` when `prefix` authenticates at `now` (`until` is the end
    /// of a previous key's grace, `None` for the current key); `None` when it
    /// does not.
    pub fn validity(&self, prefix: &str, now: Timestamp) -> Option<Option<Timestamp>> {
        if self.is_current(prefix) {
            return Some(None);
        }
        self.previous
            .as_ref()
            .filter(|p| p.prefix.as_str() == prefix && p.valid_until > now)
            .map(|p| Some(p.valid_until))
    }

    /// The previous key while its grace lasts.
    pub fn in_grace(&self, now: Timestamp) -> Option<&PreviousKey> {
        self.previous.as_ref().filter(|p| p.valid_until > now)
    }

    /// Decides a rotation to a new key, asked with the key `using`.
    pub fn rotate(
        &self,
        using: &KeyPrefix,
        grace: GracePeriod,
        now: Timestamp,
    ) -> Result<Rotation, KeyRingError> {
        let current = self
            .current
            .as_ref()
            .filter(|_| self.is_current(using.as_str()))
            .ok_or(KeyRingError::NotCurrentKey)?;
        let grace = Duration::seconds(i64::try_from(grace.as_seconds()).unwrap_or(i64::MAX));
        Ok(Rotation {
            previous_prefix: current.prefix.clone(),
            previous_valid_until: Timestamp::from_datetime(now.as_datetime() + grace),
            dropped_prefix: self.in_grace(now).map(|p| p.prefix.clone()),
        })
    }

    /// Decides revoking `prefix` (the previous key), asked with `using`.
    pub fn revoke(
        &self,
        prefix: &KeyPrefix,
        using: &KeyPrefix,
        now: Timestamp,
    ) -> Result<(), KeyRingError> {
        if !self.is_current(using.as_str()) {
            return Err(KeyRingError::NotCurrentKey);
        }
        if self.is_current(prefix.as_str()) {
            return Err(KeyRingError::CannotRevokeCurrentKey);
        }
        match self.in_grace(now) {
            Some(previous) if previous.prefix == *prefix => Ok(()),
            _ => Err(KeyRingError::KeyNotFound),
        }
    }

    /// A first key was issued.
    pub fn issued(&mut self, prefix: &KeyPrefix, at: Timestamp) {
        self.current = Some(Key {
            prefix: prefix.clone(),
            issued_at: at,
        });
    }

    /// A rotation happened.
    pub fn rotated(
        &mut self,
        new_prefix: &KeyPrefix,
        at: Timestamp,
        previous_valid_until: Timestamp,
    ) {
        let previous = self.current.replace(Key {
            prefix: new_prefix.clone(),
            issued_at: at,
        });
        self.previous = previous.map(|p| PreviousKey {
            prefix: p.prefix,
            issued_at: p.issued_at,
            valid_until: previous_valid_until,
        });
    }

    /// A previous key was revoked.
    pub fn revoked(&mut self, prefix: &KeyPrefix) {
        if self.previous.as_ref().is_some_and(|p| p.prefix == *prefix) {
            self.previous = None;
        }
    }
}
