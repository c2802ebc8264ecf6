//! Bounds on live tails of the log (`/v1/events/stream`): at most a few per
//! API key and a fixed number in all, so that tails, which each hold a
//! connection and follow the head for as long as they last, cannot crowd
//! out other work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{ApiError, ErrorCode};

#[derive(Default)]
struct Open {
    total: usize,
    by_key: HashMap<String, usize>,
}

pub struct Tails {
    per_key: usize,
    total: usize,
    open: Mutex<Open>,
}

/// One open tail; its place is given back when it is dropped (the client
/// left, or the tail ended).
pub struct TailSlot {
    tails: Arc<Tails>,
    key_prefix: String,
}

impl Tails {
    pub fn new(per_key: usize, total: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            total: total.max(1),
            open: Mutex::default(),
        }
    }

    /// A place for one more tail of the key `key_prefix`: 429 past the
    /// key's share, 503 past the total.
    pub fn open(self: &Arc<Self>, key_prefix: &str) -> Result<TailSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let of_key = open.by_key.get(key_prefix).copied().unwrap_or(0);
        if of_key >= self.per_key {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("this key has {} live tails open already", self.per_key),
            )
            .with_retry_after(5));
        }
        if open.total >= self.total {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the service has as many live tails open as it serves",
            )
            .with_retry_after(5));
        }
        open.total += 1;
        *open.by_key.entry(key_prefix.to_owned()).or_default() += 1;
        Ok(TailSlot {
            tails: self.clone(),
            key_prefix: key_prefix.to_owned(),
        })
    }

    /// How many tails are open.
    pub fn open_now(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut open = self.tails.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_key.get_mut(&self.key_prefix) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_key.remove(&self.key_prefix);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_bounded_per_key_and_in_all_and_given_back() {
        let tails = Arc::new(Tails::new(2, 3));
        let a1 = tails.open("aaaa").unwrap();
        let _a2 = tails.open("aaaa").unwrap();
        assert_eq!(
            tails.open("aaaa").err().unwrap().code(),
            ErrorCode::RateLimited
        );
        let _b1 = tails.open("bbbb").unwrap();
        assert_eq!(
            tails.open("cccc").err().unwrap().code(),
            ErrorCode::Unavailable
        );
        drop(a1);
        assert_eq!(tails.open_now(), 2);
        assert!(tails.open("cccc").is_ok());
    }
}
