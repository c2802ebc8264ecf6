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
//! Times are NumericDates within ±(2^53 − 1) and all arithmetic on them
//! saturates. Every text the outcome keeps from the presentation is bounded
//! ([`crate::bounded`]), so the record of any attempt fits the log.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bounded;
use crate::issuer::KeyLookupError;
use crate::jose::{Algorithm, JoseError, Jwk, PublicKey};
use crate::log::Timestamp;
use crate::sd_jwt::{self, Presentation, Processed};
use crate::status_list::{self, StatusList};

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

/// What the verifier needs to know of the world, resolved beforehand.
pub trait Trust {
    /// Whether `iss` is a registered issuer: `None` if unknown, else whether
    /// it is suspended.
    fn issuer_suspended(&self, iss: &str) -> Option<bool>;
    /// The key of `iss` that `kid` names, as of `signed_at`.
    fn issuer_key(
        &self,
        iss: &str,
        kid: Option<&str>,
        signed_at: Timestamp,
    ) -> Result<PublicKey, KeyLookupError>;
    /// Whether `iss` is trusted for credentials of type `vct`.
    fn allows(&self, iss: &str, vct: &str) -> bool;
    /// The status list published at `uri`.
    fn status_list(&self, uri: &str) -> Option<&StatusList>;
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub failed_step: Option<Step>,
    pub reason: Option<String>,
    pub steps: Vec<StepResult>,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub vct: Option<String>,
    pub status: Option<StatusUsed>,
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
        self.reason = Some("nonce_replayed".into());
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

type StepFailure = (&'static str, String);

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

fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, StepFailure> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => numeric_date(value).map(Some).ok_or((
            "credential_time_invalid",
            format!("{name} is not a number of seconds within ±(2^53 − 1)"),
        )),
    }
}

/// Runs the seven steps on `text`.
pub fn verify(text: &str, request: &Request<'_>, trust: &impl Trust) -> Outcome {
    let mut run = Run { steps: Vec::new() };
    let mut outcome = Outcome {
        failed_step: None,
        reason: None,
        steps: Vec::new(),
        issuer: None,
        kid: None,
        vct: None,
        status: None,
        claims: None,
        disclosed_paths: Vec::new(),
    };
    let result = steps(text, request, trust, &mut run, &mut outcome);
    if let Err((step, (reason, detail))) = result {
        run.steps.push(StepResult {
            name: step,
            passed: false,
            detail,
        });
        outcome.failed_step = Some(step);
        outcome.reason = Some(reason.to_owned());
    }
    outcome.steps = run.steps;
    outcome.bound()
}

fn steps(
    text: &str,
    request: &Request<'_>,
    trust: &impl Trust,
    run: &mut Run,
    outcome: &mut Outcome,
) -> Result<(), (Step, StepFailure)> {
    // 1. DECODE
    let at = |step: Step| move |failure: StepFailure| (step, failure);
    let presentation = decode(text, request.profile).map_err(at(Step::Decode))?;
    let claims = &presentation.issuer_jwt.payload;
    // SD-JWT VC names its issuer in `iss`; a generic SD-JWT over a W3C data
    // model payload (RFC 9901 A.4) in `issuer`.
    let issuer_claim = match request.profile {
        Profile::SdJwtVc => None,
        Profile::Generic { .. } => claims.get("issuer"),
    };
    let iss = claims
        .get("iss")
        .or(issuer_claim)
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kid = presentation.issuer_jwt.kid().map(str::to_owned);
    let vct = claims.get("vct").and_then(Value::as_str).map(str::to_owned);
    outcome.issuer = iss.clone();
    outcome.kid = kid.clone();
    outcome.vct = vct.clone();
    run.pass(
        Step::Decode,
        format!(
            "{} JWT with {} Disclosure(s){}",
            presentation.issuer_jwt.alg().unwrap_or_default(),
            presentation.disclosures.len(),
            if presentation.key_binding.is_some() {
                " and a Key Binding JWT"
            } else {
                ""
            }
        ),
    );

    // 2. FRESHNESS
    freshness(&presentation, request).map_err(at(Step::Freshness))?;
    run.pass(
        Step::Freshness,
        "within its validity; the key binding is fresh and names the nonce",
    );

    // 3. ISSUER_AUTH
    let issued_at = seconds(claims, "iat").ok().flatten();
    let signed_at = issued_at
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or(request.now, Timestamp::from_datetime);
    let key = issuer_auth(
        iss.as_deref(),
        kid.as_deref(),
        vct.as_deref(),
        signed_at,
        request.profile,
        trust,
    )
    .map_err(at(Step::IssuerAuth))?;
    run.pass(
        Step::IssuerAuth,
        format!(
            "{} is a trusted issuer; its key is active",
            iss.as_deref().unwrap_or_default()
        ),
    );

    // 4. SIGNATURE
    presentation
        .issuer_jwt
        .verify(&key)
        .map_err(|e| match e {
            JoseError::AlgorithmKeyMismatch { .. } => ("alg_key_mismatch", e.to_string()),
            other => ("signature_invalid", other.to_string()),
        })
        .map_err(at(Step::Signature))?;
    let Processed {
        claims: processed,
        disclosed_paths,
    } = sd_jwt::process(claims, &presentation.disclosures)
        .map_err(|e| (e.reason, e.detail))
        .map_err(at(Step::Signature))?;
    outcome.disclosed_paths = disclosed_paths;
    run.pass(
        Step::Signature,
        "the issuer's signature verifies; every Disclosure is referenced once",
    );

    // 5. REVOCATION: `status` (like `cnf` below) is read from the signed
    // payload, never from a Disclosure the holder could leave out.
    let status = revocation(
        claims,
        iss.as_deref().unwrap_or_default(),
        request.now,
        trust,
    );
    match status {
        Ok(None) => run.pass(Step::Revocation, "the credential has no status entry"),
        Ok(Some(used)) => {
            run.pass(
                Step::Revocation,
                format!(
                    "its entry in {} (version {}) is valid",
                    used.uri, used.list_version
                ),
            );
            outcome.status = Some(used);
        }
        Err((used, failure)) => {
            outcome.status = used;
            return Err((Step::Revocation, failure));
        }
    }

    // 6. HOLDER_BINDING
    let detail = holder_binding(&presentation, claims, request).map_err(at(Step::HolderBinding))?;
    run.pass(Step::HolderBinding, detail);

    // 7. CLAIMS
    for path in request.required_claims {
        if path.find(&processed).is_none() {
            return Err((
                Step::Claims,
                ("claim_missing", format!("{path} is not disclosed")),
            ));
        }
    }
    run.pass(
        Step::Claims,
        format!(
            "{} required claim(s) disclosed",
            request.required_claims.len()
        ),
    );
    outcome.claims = Some(processed);
    Ok(())
}

fn decode(text: &str, profile: Profile) -> Result<Presentation, StepFailure> {
    let presentation = Presentation::parse(text).map_err(|e| (e.reason, e.detail))?;
    let jwt = &presentation.issuer_jwt;
    // RFC 7515 4.1.11: a critical header Proofline does not understand (it
    // understands none) makes the JWS invalid.
    for (which, jws) in [
        ("issuer-signed JWT", Some(jwt)),
        ("Key Binding JWT", presentation.key_binding.as_ref()),
    ] {
        if let Some(jws) = jws
            && jws.header.contains_key("crit")
        {
            return Err((
                "crit_unsupported",
                format!(
                    "the {which} has critical header parameters (crit), which are not supported"
                ),
            ));
        }
    }
    let alg = jwt.alg().unwrap_or_default();
    Algorithm::parse(alg).map_err(|_| {
        (
            "alg_not_allowed",
            format!("alg {alg:?} is not accepted (EdDSA and ES256 only)"),
        )
    })?;
    let typ = jwt.typ().unwrap_or_default();
    let typ_ok = match profile {
        Profile::SdJwtVc => matches!(typ, "dc+sd-jwt" | "vc+sd-jwt"),
        Profile::Generic { typ: expected } => typ == expected,
    };
    if !typ_ok {
        return Err((
            "typ_invalid",
            format!("typ {typ:?} is not an SD-JWT VC type (dc+sd-jwt)"),
        ));
    }
    if matches!(profile, Profile::SdJwtVc)
        && let Some(name) = sd_jwt::disclosed_at_top(
            &jwt.payload,
            &presentation.disclosures,
            &sd_jwt::NOT_DISCLOSABLE,
        )
    {
        return Err((
            "claim_not_disclosable",
            format!("{name} may not be selectively disclosed (SD-JWT VC)"),
        ));
    }
    match jwt.payload.get("_sd_alg") {
        None => {}
        Some(Value::String(a)) if a == "sha-256" => {}
        Some(other) => {
            return Err((
                "sd_alg_unsupported",
                format!("_sd_alg {other} is not sha-256"),
            ));
        }
    }
    Ok(presentation)
}

fn freshness(presentation: &Presentation, request: &Request<'_>) -> Result<(), StepFailure> {
    let now = request.now.as_datetime().timestamp();
    let claims = &presentation.issuer_jwt.payload;
    // Saturating arithmetic throughout: times are bounded by `seconds`, but
    // `now` and the maximum age come from the caller.
    if let Some(nbf) = seconds(claims, "nbf")?
        && nbf > now.saturating_add(SKEW_SECONDS)
    {
        return Err((
            "credential_not_yet_valid",
            format!("nbf is {} s ahead", nbf.saturating_sub(now)),
        ));
    }
    if let Some(iat) = seconds(claims, "iat")?
        && iat > now.saturating_add(SKEW_SECONDS)
    {
        return Err((
            "credential_issued_in_future",
            format!("iat is {} s ahead", iat.saturating_sub(now)),
        ));
    }
    if let Some(exp) = seconds(claims, "exp")?
        && exp <= now.saturating_sub(SKEW_SECONDS)
    {
        return Err((
            "credential_expired",
            format!("expired {} s ago", now.saturating_sub(exp)),
        ));
    }
    if let Some(kb) = &presentation.key_binding {
        let iat = seconds(&kb.payload, "iat")
            .map_err(|_| {
                (
                    "kb_iat_invalid",
                    "the key binding's iat is not a number".to_owned(),
                )
            })?
            .ok_or(("kb_iat_invalid", "the key binding has no iat".to_owned()))?;
        if iat > now.saturating_add(SKEW_SECONDS) {
            return Err((
                "kb_iat_in_future",
                format!(
                    "the key binding is dated {} s ahead",
                    iat.saturating_sub(now)
                ),
            ));
        }
        let oldest = now
            .saturating_sub(request.max_age_seconds)
            .saturating_sub(SKEW_SECONDS);
        if iat < oldest {
            return Err((
                "kb_iat_too_old",
                format!(
                    "the key binding is {} s old (at most {} s)",
                    now.saturating_sub(iat),
                    request.max_age_seconds
                ),
            ));
        }
        let nonce = kb.payload.get("nonce").and_then(Value::as_str);
        if nonce != Some(request.nonce) {
            return Err((
                "nonce_mismatch",
                "the key binding's nonce is not the one given".into(),
            ));
        }
    }
    Ok(())
}

fn issuer_auth(
    iss: Option<&str>,
    kid: Option<&str>,
    vct: Option<&str>,
    signed_at: Timestamp,
    profile: Profile,
    trust: &impl Trust,
) -> Result<PublicKey, StepFailure> {
    let iss = iss.ok_or(("issuer_unknown", "the credential has no iss".to_owned()))?;
    match trust.issuer_suspended(iss) {
        None => {
            return Err((
                "issuer_unknown",
                format!("{iss} is not in the trust registry"),
            ));
        }
        Some(true) => return Err(("issuer_suspended", format!("{iss} is suspended"))),
        Some(false) => {}
    }
    let key = trust.issuer_key(iss, kid, signed_at).map_err(|e| match e {
        KeyLookupError::UnknownKid => (
            "key_unknown",
            format!("no key of {iss} has kid {}", kid.unwrap_or("(none)")),
        ),
        KeyLookupError::Retired { retired_at } => (
            "key_retired",
            format!("the key was retired at {retired_at}, before the credential was issued"),
        ),
        KeyLookupError::Revoked { revoked_at } => (
            "key_revoked",
            format!("the key was revoked at {revoked_at}; it verifies nothing"),
        ),
    })?;
    if matches!(profile, Profile::SdJwtVc) {
        let vct = vct.ok_or(("vct_not_allowed", "the credential has no vct".to_owned()))?;
        if !trust.allows(iss, vct) {
            return Err(("vct_not_allowed", format!("{iss} is not trusted for {vct}")));
        }
    }
    Ok(key)
}

type RevocationFailure = (Option<StatusUsed>, StepFailure);

fn revocation(
    claims: &Map<String, Value>,
    iss: &str,
    now: Timestamp,
    trust: &impl Trust,
) -> Result<Option<StatusUsed>, RevocationFailure> {
    let Some(status) = claims.get("status") else {
        return Ok(None);
    };
    let Some(reference) = status.get("status_list") else {
        return Ok(None);
    };
    let invalid = |m: &str| (None, ("status_invalid", m.to_owned()));
    let uri = reference
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("status_list.uri is missing"))?;
    let idx = reference
        .get("idx")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("status_list.idx is not a whole number"))?;
    let list = trust.status_list(uri).ok_or((
        None,
        (
            "status_list_unknown",
            format!("no status list is known at {uri}"),
        ),
    ))?;
    if list.issuer.as_str() != iss {
        return Err((
            None,
            (
                "status_list_issuer_mismatch",
                format!("the list at {uri} was published by another issuer"),
            ),
        ));
    }
    if list
        .exp
        .is_some_and(|exp| exp <= now.as_datetime().timestamp())
    {
        return Err((
            None,
            ("status_list_expired", format!("the list at {uri} expired")),
        ));
    }
    let Some(status) = list.status(idx) else {
        return Err((
            None,
            (
                "status_index_out_of_range",
                format!(
                    "the list at {uri} (version {}) is shorter than the credential's index",
                    list.version
                ),
            ),
        ));
    };
    let used = StatusUsed {
        uri: uri.to_owned(),
        list_version: list.version,
        status,
    };
    let version = list.version;
    match status {
        status_list::VALID => Ok(Some(used)),
        status_list::INVALID => Err((
            Some(used),
            (
                "status_revoked",
                format!("its entry in {uri} (version {version}) is revoked"),
            ),
        )),
        status_list::SUSPENDED => Err((
            Some(used),
            (
                "status_suspended",
                format!("its entry in {uri} (version {version}) is suspended"),
            ),
        )),
        other => Err((
            Some(used),
            (
                "status_invalid",
                format!("its entry in {uri} (version {version}) has status {other}"),
            ),
        )),
    }
}

fn holder_binding(
    presentation: &Presentation,
    claims: &Map<String, Value>,
    request: &Request<'_>,
) -> Result<String, StepFailure> {
    let Some(kb) = &presentation.key_binding else {
        if request.require_holder_binding {
            return Err((
                "kb_missing",
                "the presentation has no Key Binding JWT".into(),
            ));
        }
        return Ok("not required, none presented".into());
    };
    if kb.typ() != Some("kb+jwt") {
        return Err((
            "kb_type_invalid",
            "the Key Binding JWT's typ is not kb+jwt".into(),
        ));
    }
    let jwk = claims.get("cnf").and_then(|cnf| cnf.get("jwk")).ok_or((
        "cnf_missing",
        "the credential binds no holder key (cnf.jwk)".to_owned(),
    ))?;
    let (_, holder) = Jwk::from_json(jwk).map_err(|e| ("cnf_invalid", format!("cnf.jwk: {e}")))?;
    kb.verify(&holder)
        .map_err(|e| ("kb_signature_invalid", e.to_string()))?;
    if kb.payload.get("aud").and_then(Value::as_str) != Some(request.audience) {
        return Err((
            "aud_mismatch",
            format!("the key binding is not for {}", request.audience),
        ));
    }
    if kb.payload.get("sd_hash").and_then(Value::as_str) != Some(presentation.sd_hash().as_str()) {
        return Err((
            "sd_hash_mismatch",
            "sd_hash does not cover this presentation".into(),
        ));
    }
    Ok("signed by the credential's holder key, for this audience and presentation".into())
}

/// The trust registry as resolved for one verification: the issuer the
/// credential names (if registered) and the status list it points to (if
/// published).
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolved<'a> {
    pub issuer: Option<&'a crate::issuer::Issuer>,
    pub list: Option<&'a StatusList>,
}

impl Resolved<'_> {
    fn issuer(&self, iss: &str) -> Option<&crate::issuer::Issuer> {
        self.issuer.filter(|issuer| issuer.did.as_str() == iss)
    }
}

impl Trust for Resolved<'_> {
    fn issuer_suspended(&self, iss: &str) -> Option<bool> {
        self.issuer(iss).map(|issuer| issuer.suspended)
    }

    fn issuer_key(
        &self,
        iss: &str,
        kid: Option<&str>,
        signed_at: Timestamp,
    ) -> Result<PublicKey, KeyLookupError> {
        let issuer = self.issuer(iss).ok_or(KeyLookupError::UnknownKid)?;
        issuer.key_at(kid, signed_at).map(|key| key.key.clone())
    }

    fn allows(&self, iss: &str, vct: &str) -> bool {
        self.issuer(iss).is_some_and(|issuer| issuer.allows(vct))
    }

    fn status_list(&self, uri: &str) -> Option<&StatusList> {
        self.list.filter(|list| list.uri.as_str() == uri)
    }
}

/// What a presentation says it needs from the trust registry, read before
/// anything is verified: the issuer's `iss` and the status list's `uri`.
/// Used only to look them up; [`verify`] checks everything again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub iss: Option<String>,
    pub status_list_uri: Option<String>,
}

/// The references of `text`; empty when it does not even split.
pub fn references(text: &str) -> References {
    if text.len() > sd_jwt::MAX_PRESENTATION_BYTES {
        return References::default();
    }
    let jwt = text.split('~').next().unwrap_or_default();
    let Ok(jws) = crate::jose::CompactJws::parse(jwt) else {
        return References::default();
    };
    References {
        iss: jws
            .payload
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_owned),
        status_list_uri: jws
            .payload
            .get("status")
            .and_then(|s| s.get("status_list"))
            .and_then(|s| s.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}
