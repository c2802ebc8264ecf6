//! The seven steps, each a function from what the presentation says (and
//! what [`Trust`] knows) to a pass or a [`Reason`] with a detail.

use serde_json::{Map, Value};

use super::{
    Outcome, Profile, Reason, Request, Run, SKEW_SECONDS, StatusUsed, Step, StepFailure, Trust,
    X5cTrust, numeric_date,
};
use crate::issuer::KeyLookupError;
use crate::jose::{Algorithm, JoseError, Jwk, PublicKey};
use crate::log::Timestamp;
use crate::sd_jwt::{self, Presentation, Processed};
use crate::status_list;

fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, StepFailure> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => numeric_date(value).map(Some).ok_or((
            Reason::CredentialTimeInvalid,
            format!("{name} is not a number of seconds within ±(2^53 − 1)"),
        )),
    }
}

pub(super) fn run(
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
    outcome.key = iss
        .as_deref()
        .and_then(|iss| trust.key_used(iss, kid.as_deref(), signed_at));
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
            JoseError::AlgorithmKeyMismatch { .. } => (Reason::AlgKeyMismatch, e.to_string()),
            other => (Reason::SignatureInvalid, other.to_string()),
        })
        .map_err(at(Step::Signature))?;
    let Processed {
        claims: processed,
        disclosed_paths,
        ..
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
                (Reason::ClaimMissing, format!("{path} is not disclosed")),
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
                Reason::CritUnsupported,
                format!(
                    "the {which} has critical header parameters (crit), which are not supported"
                ),
            ));
        }
    }
    let alg = jwt.alg().unwrap_or_default();
    Algorithm::parse(alg).map_err(|_| {
        (
            Reason::AlgNotAllowed,
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
            Reason::TypInvalid,
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
            Reason::ClaimNotDisclosable,
            format!("{name} may not be selectively disclosed (SD-JWT VC)"),
        ));
    }
    sd_jwt::check_sd_alg(&jwt.payload).map_err(|e| (e.reason, e.detail))?;
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
            Reason::CredentialNotYetValid,
            format!("nbf is {} s ahead", nbf.saturating_sub(now)),
        ));
    }
    if let Some(iat) = seconds(claims, "iat")?
        && iat > now.saturating_add(SKEW_SECONDS)
    {
        return Err((
            Reason::CredentialIssuedInFuture,
            format!("iat is {} s ahead", iat.saturating_sub(now)),
        ));
    }
    if let Some(exp) = seconds(claims, "exp")?
        && exp <= now.saturating_sub(SKEW_SECONDS)
    {
        return Err((
            Reason::CredentialExpired,
            format!("expired {} s ago", now.saturating_sub(exp)),
        ));
    }
    if let Some(kb) = &presentation.key_binding {
        let iat = seconds(&kb.payload, "iat")
            .map_err(|_| {
                (
                    Reason::KbIatInvalid,
                    "the key binding's iat is not a number".to_owned(),
                )
            })?
            .ok_or((
                Reason::KbIatInvalid,
                "the key binding has no iat".to_owned(),
            ))?;
        if iat > now.saturating_add(SKEW_SECONDS) {
            return Err((
                Reason::KbIatInFuture,
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
                Reason::KbIatTooOld,
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
                Reason::NonceMismatch,
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
    let iss = iss.ok_or((
        Reason::IssuerUnknown,
        "the credential has no iss".to_owned(),
    ))?;
    match trust.issuer_suspended(iss) {
        None => {
            return Err((
                Reason::IssuerUnknown,
                format!("{iss} is not in the trust registry"),
            ));
        }
        Some(true) => return Err((Reason::IssuerSuspended, format!("{iss} is suspended"))),
        Some(false) => {}
    }
    let x5c = trust.x5c(iss);
    let key = match x5c {
        Some(X5cTrust::Key { key, .. }) => Ok(key.clone()),
        Some(X5cTrust::Refused(reason, why)) => return Err((reason, why.to_owned())),
        None => trust.issuer_key(iss, kid, signed_at),
    };
    let key = key.map_err(|e| match e {
        KeyLookupError::UnknownKid if trust.issuer_keys_unavailable(iss).is_some() => (
            Reason::IssuerKeysUnavailable,
            format!(
                "no key of {iss} has kid {}, and its keys could not be resolved: {}",
                kid.unwrap_or("(none)"),
                trust.issuer_keys_unavailable(iss).unwrap_or_default()
            ),
        ),
        KeyLookupError::UnknownKid => (
            Reason::KeyUnknown,
            format!("no key of {iss} has kid {}", kid.unwrap_or("(none)")),
        ),
        KeyLookupError::Retired { retired_at } => (
            Reason::KeyRetired,
            format!("the key was retired at {retired_at}, before the credential was issued"),
        ),
        KeyLookupError::Revoked { revoked_at } => (
            Reason::KeyRevoked,
            format!("the key was revoked at {revoked_at}; it verifies nothing"),
        ),
    })?;
    if matches!(profile, Profile::SdJwtVc) {
        let vct = vct.ok_or((
            Reason::VctNotAllowed,
            "the credential has no vct".to_owned(),
        ))?;
        if !trust.allows(iss, vct) {
            return Err((
                Reason::VctNotAllowed,
                format!("{iss} is not trusted for {vct}"),
            ));
        }
        if let Some(why) = trust.type_metadata_invalid(vct) {
            return Err((
                Reason::TypeMetadataInvalid,
                format!("the type metadata of {vct}: {why}"),
            ));
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
    let invalid = |m: &str| (None, (Reason::StatusInvalid, m.to_owned()));
    let uri = reference
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("status_list.uri is missing"))?;
    let idx = reference
        .get("idx")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("status_list.idx is not a whole number"))?;
    if trust.status_list(uri).is_none()
        && let Some(why) = trust.status_list_expired(uri)
    {
        return Err((
            None,
            (
                Reason::StatusListExpired,
                format!("the list at {uri} expired: {why}"),
            ),
        ));
    }
    let list = match (trust.status_list(uri), trust.status_list_unavailable(uri)) {
        (Some(list), _) => list,
        (None, Some(why)) => {
            return Err((
                None,
                (
                    Reason::StatusListUnavailable,
                    format!("the list at {uri} could not be fetched: {why}"),
                ),
            ));
        }
        (None, None) => {
            return Err((
                None,
                (
                    Reason::StatusListUnknown,
                    format!("no status list is known at {uri}"),
                ),
            ));
        }
    };
    if list.issuer.as_str() != iss {
        return Err((
            None,
            (
                Reason::StatusListIssuerMismatch,
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
            (
                Reason::StatusListExpired,
                format!("the list at {uri} expired"),
            ),
        ));
    }
    let Some(status) = list.status(idx) else {
        return Err((
            None,
            (
                Reason::StatusIndexOutOfRange,
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
        fetched_at: list.fetched_at,
    };
    let version = list.version;
    match status {
        status_list::VALID => Ok(Some(used)),
        status_list::INVALID => Err((
            Some(used),
            (
                Reason::StatusRevoked,
                format!("its entry in {uri} (version {version}) is revoked"),
            ),
        )),
        status_list::SUSPENDED => Err((
            Some(used),
            (
                Reason::StatusSuspended,
                format!("its entry in {uri} (version {version}) is suspended"),
            ),
        )),
        other => Err((
            Some(used),
            (
                Reason::StatusInvalid,
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
                Reason::KbMissing,
                "the presentation has no Key Binding JWT".into(),
            ));
        }
        return Ok("not required, none presented".into());
    };
    if kb.typ() != Some("kb+jwt") {
        return Err((
            Reason::KbTypeInvalid,
            "the Key Binding JWT's typ is not kb+jwt".into(),
        ));
    }
    let jwk = claims.get("cnf").and_then(|cnf| cnf.get("jwk")).ok_or((
        Reason::CnfMissing,
        "the credential binds no holder key (cnf.jwk)".to_owned(),
    ))?;
    let (_, holder) =
        Jwk::from_json(jwk).map_err(|e| (Reason::CnfInvalid, format!("cnf.jwk: {e}")))?;
    kb.verify(&holder)
        .map_err(|e| (Reason::KbSignatureInvalid, e.to_string()))?;
    if kb.payload.get("aud").and_then(Value::as_str) != Some(request.audience) {
        return Err((
            Reason::AudMismatch,
            format!("the key binding is not for {}", request.audience),
        ));
    }
    if kb.payload.get("sd_hash").and_then(Value::as_str) != Some(presentation.sd_hash().as_str()) {
        return Err((
            Reason::SdHashMismatch,
            "sd_hash does not cover this presentation".into(),
        ));
    }
    Ok("signed by the credential's holder key, for this audience and presentation".into())
}
