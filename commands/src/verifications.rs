//! Verifying a presentation: resolve, verify off the async threads, record
//! under a stream that makes the nonce single-use, answer with a receipt.
//!
//! The trust registry is read from the write side ([`Registry`]) before the
//! pure verifier runs; the verifier checks everything again, so a lookup by
//! a forged `iss` only finds nothing. The record goes to
//! `verification-<id>` with `no_stream`, the id derived from lender and
//! nonce: when the store refuses it, the nonce was used before, and the
//! replay is recorded under an id of its own with FRESHNESS failed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use proofline_domain::decider::{Rejection, RejectionKind};
use proofline_domain::did::Did;
use proofline_domain::issuer::Issuer;
use proofline_domain::lender::{LenderError, LenderId};
use proofline_domain::log::{Envelope, Timestamp};
use proofline_domain::status_list::{ListUri, StatusList};
use proofline_domain::values::{Audience, Audiences};
use proofline_domain::verification::{self, ClaimPath, Outcome, Profile, Request, Resolved};
use proofline_domain::verification_record::{
    Asked, VerificationEvent, VerificationId, VerificationRecord,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::fetched_keys::KeyResolver;
use crate::fetched_lists::{ListAnswer, StatusListFetcher};
use crate::handler::{CommandContext, CommandError, Done};
use crate::lenders::{self, Seal};
use crate::registry::Registry;
use crate::signing::ServiceKey;
use crate::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError};
use crate::type_metadata::TypeMetadata;
use crate::x5c;
use proofline_domain::issuer::KeySource;
use proofline_domain::jose::CompactJws;
use proofline_domain::trust_anchor::TrustAnchors;
use proofline_domain::verification::X5cTrust;

/// What a lender may not ask of a verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No lender can verify a presentation made for another's audience.
    #[error("audience is not one of this lender's registered audiences")]
    AudienceNotRegistered,
}

impl Rejection for VerifyError {
    fn kind(&self) -> RejectionKind {
        match self {
            VerifyError::AudienceNotRegistered => RejectionKind::Invalid,
        }
    }
}

/// What a lender asks to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub presentation: String,
    pub nonce: String,
    pub audience: Option<Audience>,
    pub required_claims: Vec<ClaimPath>,
    pub require_holder_binding: bool,
}

/// One presentation to put through the seven steps.
#[derive(Debug, Clone)]
pub struct Checked {
    pub presentation: Arc<str>,
    pub nonce: Arc<str>,
    /// What the Key Binding JWT's `aud` must be.
    pub audience: Arc<str>,
    pub required_claims: Arc<Vec<ClaimPath>>,
    pub require_holder_binding: bool,
}

/// What a verification decided: the record, and the disclosed values the
/// answer shows (only when verified; never recorded).
#[derive(Debug, Clone)]
pub struct Verified {
    pub record: VerificationRecord,
    pub disclosed_claims: Option<Map<String, Value>>,
}

pub struct Verifier {
    store: Arc<dyn EventStore>,
    registry: Arc<Registry>,
    service_key: Arc<ServiceKey>,
    /// How old a Key Binding JWT may be, in seconds.
    max_age_seconds: i64,
    /// Lenders' audiences: fixed at registration, so cached for good.
    audiences: RwLock<HashMap<LenderId, Audiences>>,
    /// Status lists fetched by URI; without it, only posted lists are used.
    lists: Option<Arc<StatusListFetcher>>,
    /// Issuer keys resolved from DID documents and issuer metadata.
    keys: Option<Arc<KeyResolver>>,
    /// The trust anchors last read, and as parsed for `x5c` chains.
    anchors: std::sync::Mutex<Option<AnchorsParsed>>,
    /// Pinned type metadata, checked by its integrity.
    types: Option<Arc<TypeMetadata>>,
}

type AnchorsParsed = (Arc<TrustAnchors>, Arc<Vec<x5c::TrustAnchor>>);

/// The issuer a presentation names, resolved.
#[derive(Clone)]
struct Trusted {
    issuer: Arc<Option<Issuer>>,
    keys_unavailable: Option<String>,
    /// The credential's `x5c` chain, checked when the issuer is trusted
    /// through one: the leaf key and its thumbprint, or why not.
    x5c: Option<X5cChecked>,
    /// Why the pinned type metadata does not match, when it does not.
    type_metadata_invalid: Option<String>,
}

/// Why the verifier has no list for a credential that names one.
enum ListProblem {
    /// It had to be fetched and could not be.
    Unavailable(String),
    /// What the issuer serves is past its `exp`.
    Expired(String),
}

/// Whether the issuer's signature verified: the outcome got past SIGNATURE.
fn signed(outcome: &Outcome) -> bool {
    !matches!(
        outcome.failed_step,
        Some(
            verification::Step::Decode
                | verification::Step::Freshness
                | verification::Step::IssuerAuth
                | verification::Step::Signature
        )
    )
}

use x5c::Checked as X5cChecked;

/// Counts a verification the log recorded, by outcome and failed step
/// (`proofline_verifications_total`): direct ones and OpenID4VP ones.
pub(crate) fn count_recorded(failed_step: Option<verification::Step>) {
    metrics::counter!(
        "proofline_verifications_total",
        "outcome" => if failed_step.is_none() { "verified" } else { "failed" },
        "failed_step" => failed_step.map_or("none", verification::Step::name)
    )
    .increment(1);
}

/// Counts the verifications among events just appended (an OpenID4VP
/// response records its presentations beside the request's events).
pub(crate) fn count_recorded_events(events: &[NewEvent]) {
    for event in events {
        if matches!(
            event.event_type.as_str(),
            "PresentationVerified" | "PresentationRejected"
        ) {
            let step = event
                .data
                .get("failed_step")
                .cloned()
                .and_then(|v| serde_json::from_value::<Option<verification::Step>>(v).ok())
                .flatten();
            count_recorded(step);
        }
    }
}

impl Verifier {
    pub fn new(
        store: Arc<dyn EventStore>,
        registry: Arc<Registry>,
        service_key: Arc<ServiceKey>,
        max_age_seconds: i64,
    ) -> Self {
        Self {
            store,
            registry,
            service_key,
            max_age_seconds,
            audiences: RwLock::default(),
            lists: None,
            keys: None,
            anchors: std::sync::Mutex::default(),
            types: None,
        }
    }

    /// Checks the type metadata credentials pin (see
    /// [`crate::type_metadata`]).
    pub fn with_type_metadata(mut self, types: Arc<TypeMetadata>) -> Self {
        self.types = Some(types);
        self
    }

    /// Resolves issuer keys from their documents (see
    /// [`crate::fetched_keys`]).
    pub fn with_key_resolver(mut self, keys: Arc<KeyResolver>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Fetches status lists by URI (see [`crate::fetched_lists`]).
    pub fn with_fetched_lists(mut self, lists: Arc<StatusListFetcher>) -> Self {
        self.lists = Some(lists);
        self
    }

    async fn audiences_of(&self, lender: LenderId) -> Result<Audiences, CommandError> {
        if let Some(audiences) = self
            .audiences
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&lender)
        {
            return Ok(audiences.clone());
        }
        let audiences = lenders::get(self.store.as_ref(), lender)
            .await?
            .ok_or_else(|| CommandError::rejected(LenderError::NotFound))?
            .audiences;
        self.audiences
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lender, audiences.clone());
        Ok(audiences)
    }

    /// The audience the Key Binding JWT must name: the one asked for, which
    /// must be one of the lender's own, or the lender's first. A lender
    /// cannot verify a presentation made for another lender's audience.
    async fn audience_for(
        &self,
        lender: LenderId,
        asked: Option<&Audience>,
    ) -> Result<Audience, CommandError> {
        let audiences = self.audiences_of(lender).await?;
        match asked {
            None => Ok(audiences.first().clone()),
            Some(asked) => audiences
                .find(asked.as_str())
                .cloned()
                .ok_or_else(|| CommandError::rejected(VerifyError::AudienceNotRegistered)),
        }
    }

    /// Verifies and records. A malformed presentation is a recorded
    /// rejection at DECODE, not an error.
    pub async fn verify(
        &self,
        context: &CommandContext,
        lender: LenderId,
        ask: VerifyRequest,
        seal: Seal<'_, Verified>,
    ) -> Result<Done<Verified>, CommandError> {
        let audience = self.audience_for(lender, ask.audience.as_ref()).await?;
        let now = context.now;
        let (presentation, nonce, required, require_holder_binding, audience_text) = (
            Arc::<str>::from(ask.presentation),
            Arc::<str>::from(ask.nonce),
            Arc::new(ask.required_claims),
            ask.require_holder_binding,
            Arc::<str>::from(audience.as_str()),
        );
        let outcome = self
            .outcome(
                Checked {
                    presentation: presentation.clone(),
                    nonce: nonce.clone(),
                    audience: audience_text.clone(),
                    required_claims: required.clone(),
                    require_holder_binding,
                },
                now,
            )
            .await?;
        let asked = Asked {
            lender_id: lender,
            presentation: &presentation,
            nonce: &nonce,
            audience: &audience_text,
            required_claims: required.iter().map(ToString::to_string).collect(),
            require_holder_binding,
            at: now,
        };
        let first = VerificationId::for_nonce(lender, &nonce);
        let record = VerificationRecord::new(first, &asked, &outcome);
        match self.record(context, record, &outcome, seal).await {
            Err(CommandError::Taken { stream_id }) if stream_id == first.stream_id() => {
                let replayed = outcome.replayed();
                let id = VerificationId::from_uuid(Uuid::now_v7());
                let mut record = VerificationRecord::new(id, &asked, &replayed);
                record.first_use = Some(first);
                self.record(context, record, &replayed, seal).await
            }
            other => other,
        }
    }

    /// The seven steps on one presentation, with the trust it names
    /// resolved from the registry first; nothing is recorded. A status list
    /// that is due (never fetched, or past its age) is fetched only for a
    /// presentation that reaches REVOCATION without it: what fails before
    /// never makes Proofline fetch what it names.
    pub async fn outcome(&self, checked: Checked, now: Timestamp) -> Result<Outcome, CommandError> {
        let references = verification::references(&checked.presentation);
        let outcome = self
            .outcome_with(checked.clone(), &references, now, None)
            .await?;
        // Pinned type metadata is fetched only for a credential whose
        // issuer signature verified (what fails before never makes
        // Proofline fetch what it names).
        let (Some(types), Some((vct, integrity)), true) =
            (&self.types, &references.vct_integrity, signed(&outcome))
        else {
            return Ok(outcome);
        };
        match types.check(vct, integrity).await {
            Ok(()) => Ok(outcome),
            Err(why) => {
                self.outcome_with(checked, &references, now, Some(why))
                    .await
            }
        }
    }

    async fn outcome_with(
        &self,
        checked: Checked,
        references: &verification::References,
        now: Timestamp,
        type_metadata_invalid: Option<String>,
    ) -> Result<Outcome, CommandError> {
        let (issuer, keys_unavailable) = self.issuer_of(references, now).await?;
        let x5c = match issuer.as_ref() {
            Some(known) => self.x5c_of(known, &checked.presentation, now).await?,
            None => None,
        };
        let trust = Trusted {
            issuer,
            keys_unavailable,
            x5c,
            type_metadata_invalid,
        };
        let Some(uri) = references
            .status_list_uri
            .as_deref()
            .and_then(|u| ListUri::parse(u).ok())
        else {
            return self.run(checked, trust, Arc::new(None), None, now).await;
        };
        let fetched = match (&self.lists, trust.issuer.as_ref()) {
            (Some(lists), Some(known)) if StatusListFetcher::fetches(&uri) && !known.suspended => {
                Some((lists, known.clone()))
            }
            _ => None,
        };
        let Some((lists, known)) = fetched else {
            let list = self.registry.status_list(&uri).await?;
            return self.run(checked, trust, list, None, now).await;
        };
        let (list, due) = lists.cached(&uri, now).await?;
        if due.is_none() {
            return self.run(checked, trust, list, None, now).await;
        }
        let first = self
            .run(
                checked.clone(),
                trust.clone(),
                Arc::new(None),
                Some(ListProblem::Unavailable("not fetched yet".into())),
                now,
            )
            .await?;
        if first.failed_step != Some(verification::Step::Revocation) {
            return Ok(first);
        }
        match lists.list_for(&uri, &known, now).await? {
            ListAnswer::Use(list) => self.run(checked, trust, list, None, now).await,
            ListAnswer::Unavailable(why) => {
                let problem = ListProblem::Unavailable(why);
                self.run(checked, trust, Arc::new(None), Some(problem), now)
                    .await
            }
            ListAnswer::Expired(why) => {
                let problem = ListProblem::Expired(why);
                self.run(checked, trust, Arc::new(None), Some(problem), now)
                    .await
            }
        }
    }

    /// The issuer a presentation names, as the registry has it, after its
    /// keys were resolved from its documents when they had to be; and why
    /// they could not be, when they could not.
    async fn issuer_of(
        &self,
        references: &verification::References,
        now: Timestamp,
    ) -> Result<(Arc<Option<Issuer>>, Option<String>), CommandError> {
        let Some(did) = references.iss.as_deref().and_then(|i| Did::parse(i).ok()) else {
            return Ok((Arc::new(None), None));
        };
        let issuer = self.registry.issuer(&did).await?;
        let (Some(keys), Some(known)) = (&self.keys, issuer.as_ref()) else {
            return Ok((issuer, None));
        };
        if known.suspended || known.fetched_sources().next().is_none() {
            return Ok((issuer, None));
        }
        let ensured = keys.ensure(known, references.kid.as_deref(), now).await;
        let issuer = if ensured.tried {
            self.registry.issuer(&did).await?
        } else {
            issuer
        };
        if ensured.expired.is_empty() {
            return Ok((issuer, ensured.unavailable));
        }
        // Without the sets that outlived their caching.
        let trimmed = issuer.as_ref().clone().map(|mut issuer| {
            issuer
                .resolved
                .retain(|set| !ensured.expired.contains(&set.source));
            issuer
        });
        Ok((Arc::new(trimmed), ensured.unavailable))
    }

    /// The credential's `x5c` chain checked against the operator's trust
    /// anchors, at the credential's `iat` and now, when `issuer` is trusted
    /// through `x5c` and the credential carries one.
    async fn x5c_of(
        &self,
        issuer: &Issuer,
        presentation: &str,
        now: Timestamp,
    ) -> Result<Option<X5cChecked>, CommandError> {
        if !issuer.key_sources.contains(&KeySource::X5c) || issuer.suspended {
            return Ok(None);
        }
        let jwt = presentation.split('~').next().unwrap_or_default();
        let Ok(jws) = CompactJws::parse(jwt) else {
            return Ok(None);
        };
        let anchors = self.anchors().await?;
        Ok(x5c::check_credential(
            &jws,
            &anchors,
            issuer.did.as_str(),
            now.as_datetime().timestamp(),
        ))
    }

    /// The trust anchors in force, parsed once per change.
    async fn anchors(&self) -> Result<Arc<Vec<x5c::TrustAnchor>>, CommandError> {
        let state = self.registry.trust_anchors().await?;
        let mut parsed = self.anchors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, anchors)) = parsed.as_ref()
            && Arc::ptr_eq(seen, &state)
        {
            return Ok(anchors.clone());
        }
        let anchors: Arc<Vec<x5c::TrustAnchor>> = Arc::new(
            state
                .anchors
                .iter()
                .filter_map(|(anchor, _)| x5c::parse_anchor_pem(&anchor.pem).ok())
                .collect(),
        );
        *parsed = Some((state, anchors.clone()));
        Ok(anchors)
    }

    /// The pure verifier, on the caller's task: about 0.1 ms of CPU
    /// (`bench verify`, one core), less than handing it to the blocking
    /// pool and back cost in thread wakeups.
    async fn run(
        &self,
        checked: Checked,
        trust: Trusted,
        list: Arc<Option<StatusList>>,
        list_problem: Option<ListProblem>,
        now: Timestamp,
    ) -> Result<Outcome, CommandError> {
        let max_age_seconds = self.max_age_seconds;
        let verify = move || {
            let request = Request {
                nonce: &checked.nonce,
                audience: &checked.audience,
                required_claims: &checked.required_claims,
                require_holder_binding: checked.require_holder_binding,
                max_age_seconds,
                now,
                profile: Profile::SdJwtVc,
            };
            let x5c = trust.x5c.as_ref().map(|checked| match checked {
                Ok((key, thumbprint)) => X5cTrust::Key { key, thumbprint },
                Err((reason, why)) => X5cTrust::Refused(*reason, why),
            });
            let trust = Resolved {
                issuer: trust.issuer.as_ref().as_ref(),
                list: list.as_ref().as_ref(),
                list_unavailable: match &list_problem {
                    Some(ListProblem::Unavailable(why)) => Some(why),
                    _ => None,
                },
                list_expired: match &list_problem {
                    Some(ListProblem::Expired(why)) => Some(why),
                    _ => None,
                },
                keys_unavailable: trust.keys_unavailable.as_deref(),
                x5c,
                type_metadata_invalid: trust.type_metadata_invalid.as_deref(),
            };
            verification::verify(&checked.presentation, &request, &trust)
        };
        Ok(verify())
    }

    async fn record(
        &self,
        context: &CommandContext,
        record: VerificationRecord,
        outcome: &Outcome,
        seal: Seal<'_, Verified>,
    ) -> Result<Done<Verified>, CommandError> {
        let stream = record.verification_id.stream_id();
        let verified = Verified {
            disclosed_claims: outcome.disclosed_claims(),
            record,
        };
        let event = verified.record.clone().into_event();
        let mut request = AppendRequest::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![NewEvent::of(&event)],
        );
        request.metadata = context.metadata.clone();
        request.secrets = seal(&verified)?;
        match self.store.append(request).await {
            Ok(outcome) => {
                count_recorded(verified.record.failed_step);
                Ok(Done {
                    value: verified,
                    outcome,
                })
            }
            Err(StoreError::Conflict { stream_id, .. }) => Err(CommandError::Taken { stream_id }),
            // Bounded texts keep records small, but a presentation with a
            // great many long claim names can still outgrow an event: record
            // the attempt as a rejection with nothing from it (so its nonce
            // is spent), rather than answer 500 and record nothing.
            Err(StoreError::InvalidAppend(why)) if !verified.record.is_too_large_stand_in() => {
                tracing::warn!(%why, "verification record refused by the store; recording it as too large");
                let record = verified.record.clone().too_large();
                let outcome = Outcome {
                    failed_step: record.failed_step,
                    reason: record.reason,
                    steps: record.steps.clone(),
                    ..Outcome::default()
                };
                Box::pin(self.record(context, record, &outcome, seal)).await
            }
            Err(other) => Err(other.into()),
        }
    }

    /// A lender's verification and its position, from the write side;
    /// `None` when it does not exist or belongs to another lender.
    pub async fn get(
        &self,
        lender: LenderId,
        id: VerificationId,
    ) -> Result<Option<(VerificationRecord, u64)>, CommandError> {
        let page = self.store.read_stream(&id.stream_id(), 0, 1).await?;
        let Some(envelope) = page.into_iter().next() else {
            return Ok(None);
        };
        let event = envelope.decode::<VerificationEvent>()?;
        let record = event.record().clone();
        Ok((record.lender_id == lender).then_some((record, envelope.position)))
    }

    /// A verification's envelope and record, whoever owns it (for auditors
    /// and the operator; check the owner before showing it to a lender).
    pub async fn envelope(
        &self,
        id: VerificationId,
    ) -> Result<Option<(Envelope, VerificationRecord)>, CommandError> {
        let page = self.store.read_stream(&id.stream_id(), 0, 1).await?;
        let Some(envelope) = page.into_iter().next() else {
            return Ok(None);
        };
        let record = envelope.decode::<VerificationEvent>()?.record().clone();
        Ok(Some((envelope, record)))
    }

    /// The receipt of a recorded verification.
    pub fn receipt(&self, record: &VerificationRecord, position: u64) -> String {
        receipt(&self.service_key, &ReceiptClaims::of(record, position))
    }
}

/// What a receipt signs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptClaims {
    pub verification_id: VerificationId,
    pub lender_id: LenderId,
    pub verified: bool,
    pub failed_step: Option<String>,
    pub presentation_sha256: String,
    pub position: u64,
    pub iat: i64,
}

impl ReceiptClaims {
    pub fn of(record: &VerificationRecord, position: u64) -> Self {
        Self {
            verification_id: record.verification_id,
            lender_id: record.lender_id,
            verified: record.verified,
            failed_step: record.failed_step.map(|s| s.name().to_owned()),
            presentation_sha256: record.presentation_sha256.clone(),
            position,
            iat: record.verified_at.as_datetime().timestamp(),
        }
    }

    /// The JWS payload: what the receipt signs, and what a checker
    /// compares a receipt's payload with.
    pub fn payload(&self) -> Value {
        json!({
            "verification_id": self.verification_id,
            "lender_id": self.lender_id,
            "verified": self.verified,
            "failed_step": self.failed_step,
            "presentation_sha256": self.presentation_sha256,
            "position": self.position,
            "iat": self.iat,
        })
    }
}

/// `typ` of a receipt's JOSE header.
pub const RECEIPT_TYP: &str = "proofline-receipt+jwt";

/// A compact JWS (EdDSA) by the service key over the receipt claims.
pub fn receipt(key: &ServiceKey, claims: &ReceiptClaims) -> String {
    let header = json!({"alg": "EdDSA", "typ": RECEIPT_TYP, "kid": key.kid()});
    key.sign_jws(&header, &claims.payload())
}
