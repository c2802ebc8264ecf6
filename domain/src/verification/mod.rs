//! Verifying a holder's presentation: the seven steps of the contract, in
//! order. The first that fails is the outcome's `failed_step`, with a stable
//! reason code; the steps after it are not run. Pure: the caller resolves
//! the issuer and the status list beforehand (see [`Trust`]) and passes the
//! time.
//!
//! 1. DECODE: compact form, base64url, JSON; `alg` EdDSA (or Ed25519) or
//!    ES256; no `crit`; `typ` of the profile; Disclosures of two or three
//!    elements, none of a claim SD-JWT VC keeps in the clear (`iss`, `nbf`,
//!    `exp`, `iat`, `cnf`, `vct`, `status`); `_sd_alg` sha-256.
//! 2. FRESHNESS: the credential's `nbf`, `iat`, `exp` (60 s of skew); the
//!    KB-JWT's `iat` (not older than the maximum age, not in the future) and
//!    `nonce`. That the nonce was never used before is the store's to say
//!    (see [`Outcome::replayed`]).
//! 3. ISSUER_AUTH: `iss` and `kid` name an active key, unretired at the
//!    credential's `iat` and never revoked, of an unsuspended issuer; `vct`
//!    is allowed.
//! 4. SIGNATURE: the issuer's JWS, then every Disclosure rule.
//! 5. REVOCATION: the status list entry, when the credential has one; an
//!    unknown list fails closed.
//! 6. HOLDER_BINDING: the KB-JWT: `typ`, `alg` of `cnf.jwk`, signature,
//!    `aud`, `sd_hash`.
//! 7. CLAIMS: every required claim is disclosed.
//!
//! Each failure names a [`Reason`] (`reason.rs`); the steps themselves are
//! in `steps.rs`, and what they need of the trust registry in `trust.rs`.
//!
//! Times are NumericDates within ±(2^53 − 1) and all arithmetic on them
//! saturates. Every text the outcome keeps from the presentation is bounded
//! ([`crate::bounded`]), so the record of any attempt fits the log.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bounded;
use crate::log::Timestamp;

mod reason;
mod steps;
mod trust;

pub use reason::Reason;
pub use trust::{KeyUsed, References, Resolved, Trust, X5cTrust, references};

/// How old a Key Binding JWT may be, unless the operator says otherwise
/// (`PROOFLINE_PRESENTATION_MAX_AGE_SECONDS`).
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 300;

/// Clock skew allowed on every time check.
pub const SKEW_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Step {
    Decode,
    Freshness,
    IssuerAuth,
    Signature,
    Revocation,
    HolderBinding,
    Claims,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Decode,
        Step::Freshness,
        Step::IssuerAuth,
        Step::Signature,
        Step::Revocation,
        Step::HolderBinding,
        Step::Claims,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Decode => "DECODE",
            Step::Freshness => "FRESHNESS",
            Step::IssuerAuth => "ISSUER_AUTH",
            Step::Signature => "SIGNATURE",
            Step::Revocation => "REVOCATION",
            Step::HolderBinding => "HOLDER_BINDING",
            Step::Claims => "CLAIMS",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepResult {
    pub name: Step,
    pub passed: bool,
    /// One line: what was checked, or what failed.
    pub detail: String,
}

/// Which credential format the verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// SD-JWT VC: `typ` `dc+sd-jwt` (or the older `vct+sd-jwt`), `vct` required.
    SdJwtVc,
    /// A plain SD-JWT with this `typ` and no `vct` (RFC 9901's own examples).
    Generic { typ: &'static str },
}

/// A claim path such as `address.country`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.chars().count() > 256 {
            return Err("a claim path is 1 to 256 characters".into());
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("{text:?} has an empty segment"));
        }
        Ok(Self(segments))
    }

    /// The value at this path: object members by name, array elements by
    /// index.
    pub fn find<'v>(&self, claims: &'v Map<String, Value>) -> Option<&'v Value> {
        let (first, rest) = self.0.split_first()?;
        let mut current = claims.get(first)?;
        for segment in rest {
            current = match current {
                Value::Object(object) => object.get(segment)?,
                Value::Array(array) => array.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// What the lender asks.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub nonce: &'a str,
    pub audience: &'a str,
    pub required_claims: &'a [ClaimPath],
    pub require_holder_binding: bool,
    pub max_age_seconds: i64,
    pub now: Timestamp,
    pub profile: Profile,
}

/// The status list a verification consulted, and what it said. The entry's
/// index is not kept: it is the same for every presentation of one
/// credential, so in the log it would let anyone follow one holder across
/// lenders. The list's URI and version and the status read are enough to
/// re-check the decision with the presentation in hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusUsed {
    pub uri: String,
    /// The list's version (how many times it had been published).
    pub list_version: u64,
    pub status: u8,
    /// When Proofline fetched that version (absent when the operator
    /// posted it): with the version, the document in the log the decision
    /// used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<crate::log::Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub failed_step: Option<Step>,
    pub reason: Option<Reason>,
    pub steps: Vec<StepResult>,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub vct: Option<String>,
    pub status: Option<StatusUsed>,
    /// The issuer key that passed ISSUER_AUTH: where it came from.
    pub key: Option<KeyUsed>,
    /// The processed claims; the caller shows values only when verified.
    pub claims: Option<Map<String, Value>>,
    /// Paths of the selectively disclosed claims (names, never values).
    pub disclosed_paths: Vec<String>,
}

impl Outcome {
    pub fn verified(&self) -> bool {
        self.failed_step.is_none()
    }

    /// Every text of the outcome that came from the presentation, bounded
    /// (see [`crate::bounded`]): step details, issuer, kid, vct, the status
    /// list's URI and the disclosed claims' paths.
    fn bound(mut self) -> Self {
        for step in &mut self.steps {
            step.detail = bounded::text(&step.detail);
        }
        for text in [&mut self.issuer, &mut self.kid, &mut self.vct]
            .into_iter()
            .flatten()
        {
            *text = bounded::text(text);
        }
        if let Some(status) = &mut self.status {
            status.uri = bounded::text(&status.uri);
        }
        for path in &mut self.disclosed_paths {
            *path = bounded::text(path);
        }
        self
    }

    /// The outcome when the store says the nonce was used before: FRESHNESS
    /// fails with `nonce_replayed`, unless an earlier step failed already.
    pub fn replayed(mut self) -> Self {
        if matches!(self.failed_step, Some(Step::Decode)) {
            return self;
        }
        self.steps.retain(|s| s.name == Step::Decode);
        self.steps.push(StepResult {
            name: Step::Freshness,
            passed: false,
            detail: "this lender used this nonce before".into(),
        });
        self.failed_step = Some(Step::Freshness);
        self.reason = Some(Reason::NonceReplayed);
        self.status = None;
        self.claims = None;
        // Paths come from processing at SIGNATURE, which a replay never
        // reaches.
        self.disclosed_paths.clear();
        self
    }

    /// The claims a lender may see: the processed payload without the
    /// JWT's own members.
    pub fn disclosed_claims(&self) -> Option<Map<String, Value>> {
        if !self.verified() {
            return None;
        }
        let mut claims = self.claims.clone()?;
        for technical in [
            "iss",
            "iat",
            "nbf",
            "exp",
            "cnf",
            "status",
            "vct",
            "vct#integrity",
            "_sd_alg",
        ] {
            claims.remove(technical);
        }
        Some(claims)
    }
}

struct Run {
    steps: Vec<StepResult>,
}

/// Why a step failed: its reason code and a one-line detail.
type StepFailure = (Reason, String);

impl Run {
    fn pass(&mut self, step: Step, detail: impl Into<String>) {
        self.steps.push(StepResult {
            name: step,
            passed: true,
            detail: detail.into(),
        });
    }
}

/// The largest magnitude of a time Proofline accepts: the integers JSON
/// carries exactly (±(2^53 − 1)), which is also what the log may hold.
pub const MAX_SAFE_SECONDS: i64 = (1 << 53) - 1;

/// A NumericDate (RFC 7519: seconds, possibly with a fraction) within
/// ±[`MAX_SAFE_SECONDS`], truncated to whole seconds; `None` for anything
/// else (a string, ±1e300, `i64::MAX` meant as "never").
pub fn numeric_date(value: &Value) -> Option<i64> {
    let seconds = match value.as_i64() {
        Some(whole) => whole,
        None => {
            let float = value.as_f64().filter(|f| f.is_finite())?;
            if float.abs() > MAX_SAFE_SECONDS as f64 {
                return None;
            }
            float.trunc() as i64
        }
    };
    (-MAX_SAFE_SECONDS..=MAX_SAFE_SECONDS)
        .contains(&seconds)
        .then_some(seconds)
}

/// Runs the seven steps on `text`.
pub fn verify(text: &str, request: &Request<'_>, trust: &impl Trust) -> Outcome {
    let mut run = Run { steps: Vec::new() };
    let mut outcome = Outcome::default();
    let result = steps::run(text, request, trust, &mut run, &mut outcome);
    if let Err((step, (reason, detail))) = result {
        run.steps.push(StepResult {
            name: step,
            passed: false,
            detail,
        });
        outcome.failed_step = Some(step);
        outcome.reason = Some(reason);
    }
    outcome.steps = run.steps;
    outcome.bound()
}
