//! Fetched trust: the one outbound fetcher's guard and limits, and how
//! fresh fetched status lists must be.

use proofline_commands::fetch::{FetchSettings, Fetcher};
use proofline_commands::fetched_lists::ListSettings;
use proofline_commands::outbound::read_pem_roots;
use proofline_commands::witnesses::Witness;

use super::ConfigError;
use super::reader::{Reader, bad};

pub(super) fn read(r: &Reader<'_>) -> Result<(FetchSettings, ListSettings), ConfigError> {
    let d = FetchSettings::default();
    let mut guard = d.guard.clone();
    guard.allowed_networks = r.networks("PROOFLINE_FETCH_ALLOWED_NETWORKS")?;
    if let Some(path) = r.get("PROOFLINE_FETCH_CA_FILE", "none") {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            bad(
                "PROOFLINE_FETCH_CA_FILE",
                format!("cannot read {path}: {e}"),
            )
        })?;
        guard.extra_roots = read_pem_roots(&pem)
            .map_err(|e| bad("PROOFLINE_FETCH_CA_FILE", format!("{path}: {e}")))?;
    }
    let fetch = FetchSettings {
        guard,
        max_bytes: r.number(
            "PROOFLINE_FETCH_MAX_BYTES",
            d.max_bytes as u64,
            1024..=16 * 1024 * 1024,
        )? as usize,
    };
    // The roots are checked now, so that a bad CA file stops the start.
    Fetcher::new(&fetch).map_err(|e| bad("PROOFLINE_FETCH_CA_FILE", e))?;
    let l = ListSettings::default();
    let lists = ListSettings {
        max_age_seconds: r.number(
            "PROOFLINE_STATUS_LIST_MAX_AGE_SECONDS",
            l.max_age_seconds,
            1..=86_400,
        )?,
        stale_grace_seconds: r.number(
            "PROOFLINE_STATUS_LIST_STALE_GRACE_SECONDS",
            l.stale_grace_seconds,
            0..=604_800,
        )?,
    };
    Ok((fetch, lists))
}

/// `PROOFLINE_WITNESSES`: whom each checkpoint is submitted to.
pub(super) fn witnesses(r: &Reader<'_>) -> Result<Vec<Witness>, ConfigError> {
    match r.get("PROOFLINE_WITNESSES", "none") {
        None => Ok(Vec::new()),
        Some(list) => Witness::parse_list(list).map_err(|e| bad("PROOFLINE_WITNESSES", e)),
    }
}
