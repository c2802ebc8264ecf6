//! `proofline keygen --out FILE`: a new service signing key.

use std::path::Path;

use proofline_commands::keys::KeyError;
use proofline_commands::signing::{self, ServiceKey};

/// Writes a new key unless `out` exists; returns its key id.
pub fn run(out: &Path) -> anyhow::Result<String> {
    if out.exists() {
        anyhow::bail!("{} exists; keygen never overwrites a key", out.display());
    }
    let (key, created): (ServiceKey, bool) =
        signing::load_or_create(out).map_err(|e: KeyError| anyhow::anyhow!(e))?;
    if !created {
        anyhow::bail!(
            "{} appeared while writing; keygen never overwrites a key",
            out.display()
        );
    }
    Ok(key.kid())
}
