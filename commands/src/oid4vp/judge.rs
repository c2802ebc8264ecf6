//! Judging a wallet's `vp_token`: each presentation through the seven
//! steps (with the request's nonce and its whole `client_id` as audience),
//! then the DCQL query on those that verified (§8.6).

use std::collections::BTreeMap;
use std::sync::Arc;

use proofline_domain::dcql::{self, DcqlQuery, Presented};
use proofline_domain::presentation_request::{
    PresentationRequest, PresentationRequestCommand as Command, ResponseRejection,
};
use proofline_domain::verification::Outcome;
use proofline_domain::verification_record::{Asked, RequestLink, VerificationRecord};
use serde_json::{Map, Value};

use super::flow::{Flows, RequestSecrets, ResultSecrets};
use super::response::{MAX_PRESENTATIONS, WalletFacingError};
use crate::handler::{CommandContext, CommandError};
use crate::store::{ExpectedVersion, NewEvent, StoreError, StreamAppend};
use crate::verifications::Checked;

/// Whether a verification record would outgrow an event of the log.
fn too_large(record: &VerificationRecord) -> bool {
    use proofline_domain::decider::EventSchema;
    serde_json::to_vec(&record.clone().into_event().encode().data)
        .map_or(true, |data| data.len() > crate::store::MAX_EVENT_DATA_BYTES)
}

impl Flows {
    /// Verifies every presentation of a `vp_token` and judges the whole
    /// against the request's DCQL query: the command to decide, the
    /// verification records to append with it, the values to seal.
    pub(super) async fn judge(
        &self,
        context: &CommandContext,
        request: &PresentationRequest,
        secrets: &RequestSecrets,
        vp_token: Option<&Value>,
        response_code_sha256: Option<String>,
    ) -> Result<(Command, Vec<StreamAppend>, Option<ResultSecrets>), WalletFacingError> {
        let new = &request.request;
        let id = new.request_id;
        let reject = |reason: ResponseRejection, detail: String| Command::Reject {
            presentations: BTreeMap::new(),
            reason,
            detail,
        };
        let token = match vp_token {
            Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
            Some(other) => Some(other.clone()),
            None => None,
        };
        let Some(Value::Object(token)) = token else {
            let detail = "vp_token is not a JSON object of presentations".to_owned();
            return Ok((
                reject(ResponseRejection::MalformedVpToken, detail),
                Vec::new(),
                None,
            ));
        };
        // The whole query is sealed with the request (its `values` may be
        // claim values); the log holds it without them.
        let query = DcqlQuery::parse(&secrets.dcql_query).map_err(|e| {
            CommandError::Store(StoreError::corrupt("sealed DCQL query", e.to_string()))
        })?;
        let mut given: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (query_id, presentations) in &token {
            let texts: Option<Vec<String>> = presentations.as_array().and_then(|items| {
                items
                    .iter()
                    .map(|p| p.as_str().map(str::to_owned))
                    .collect()
            });
            match texts {
                Some(texts) if !texts.is_empty() => {
                    given.insert(query_id.clone(), texts);
                }
                _ => {
                    let detail = format!("vp_token.{query_id} is not a non-empty array of strings");
                    let detail = proofline_domain::bounded::text(&detail);
                    return Ok((
                        reject(ResponseRejection::MalformedVpToken, detail),
                        Vec::new(),
                        None,
                    ));
                }
            }
        }
        if let Some(unknown) = given.keys().find(|id| query.credential(id).is_none()) {
            let detail = format!("vp_token.{unknown} answers no credential query of the request");
            let detail = proofline_domain::bounded::text(&detail);
            return Ok((
                reject(ResponseRejection::MalformedVpToken, detail),
                Vec::new(),
                None,
            ));
        }
        let count: usize = given.values().map(Vec::len).sum();
        if count == 0 || count > MAX_PRESENTATIONS {
            let detail = format!(
                "vp_token holds {count} presentations; 1 to {MAX_PRESENTATIONS} are accepted"
            );
            return Ok((
                reject(ResponseRejection::MalformedVpToken, detail),
                Vec::new(),
                None,
            ));
        }
        let nonce: Arc<str> = Arc::from(secrets.nonce.as_str());
        let audience: Arc<str> = Arc::from(new.client_id.as_str());
        let mut outcomes: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
        let mut records = Vec::new();
        for (query_id, texts) in &given {
            let binding = query
                .credential(query_id)
                .is_none_or(|c| c.require_cryptographic_holder_binding);
            for (index, text) in texts.iter().enumerate() {
                let outcome = self
                    .verifier
                    .outcome(
                        Checked {
                            presentation: Arc::from(text.as_str()),
                            nonce: nonce.clone(),
                            audience: audience.clone(),
                            required_claims: Arc::new(Vec::new()),
                            require_holder_binding: binding,
                        },
                        context.now,
                    )
                    .await?;
                let asked = Asked {
                    lender_id: new.lender_id,
                    presentation: text,
                    nonce: &nonce,
                    audience: &audience,
                    required_claims: Vec::new(),
                    require_holder_binding: binding,
                    at: context.now,
                };
                let mut record =
                    VerificationRecord::new(id.verification_id(query_id, index), &asked, &outcome);
                record.presentation_request = Some(RequestLink {
                    request_id: id,
                    credential_query_id: proofline_domain::bounded::text(query_id),
                });
                // A record too large for the log is recorded as such (its
                // presentation failed at DECODE), as a direct one would be.
                let mut outcome = outcome;
                if too_large(&record) {
                    record = record.too_large();
                    outcome = Outcome {
                        failed_step: record.failed_step,
                        reason: record.reason,
                        steps: record.steps.clone(),
                        ..Outcome::default()
                    };
                }
                records.push(record);
                outcomes.entry(query_id.clone()).or_default().push(outcome);
            }
        }
        let presentations: BTreeMap<String, Vec<_>> = given
            .iter()
            .map(|(query_id, texts)| {
                let ids = (0..texts.len())
                    .map(|i| id.verification_id(query_id, i))
                    .collect();
                (query_id.clone(), ids)
            })
            .collect();
        let also: Vec<StreamAppend> = records
            .iter()
            .map(|record| StreamAppend {
                stream_id: record.verification_id.stream_id(),
                expected: ExpectedVersion::NoStream,
                events: vec![NewEvent::of(&record.clone().into_event())],
            })
            .collect();
        let mut result = ResultSecrets::default();
        for (query_id, list) in &outcomes {
            result.claims.insert(
                query_id.clone(),
                list.iter().map(Outcome::disclosed_claims).collect(),
            );
        }
        // §8.6: a presentation that failed a step is discarded (its record
        // says why) and the query judged on the others.
        let empty = Map::new();
        let shown: BTreeMap<String, Vec<Presented<'_>>> = outcomes
            .iter()
            .map(|(query_id, list)| {
                let binding = query
                    .credential(query_id)
                    .is_none_or(|c| c.require_cryptographic_holder_binding);
                let presented: Vec<Presented<'_>> = list
                    .iter()
                    .filter(|o| o.verified())
                    .map(|o| Presented {
                        vct: o.vct.as_deref(),
                        claims: o.claims.as_ref().unwrap_or(&empty),
                        holder_bound: binding,
                    })
                    .collect();
                (query_id.clone(), presented)
            })
            .filter(|(_, presented)| !presented.is_empty())
            .collect();
        let evaluation = dcql::evaluate(&query, &shown);
        let failed = records.iter().find(|r| !r.verified);
        let command = match (evaluation.unsatisfied, failed) {
            (None, _) if evaluation.satisfied => Command::Accept {
                presentations,
                response_code_sha256,
            },
            (_, Some(failed)) => {
                let link = failed.presentation_request.as_ref();
                Command::Reject {
                    presentations,
                    reason: ResponseRejection::PresentationInvalid,
                    detail: format!(
                        "the presentation for {} failed {} ({})",
                        link.map_or("?", |l| l.credential_query_id.as_str()),
                        failed.failed_step.map_or("?", |s| s.name()),
                        failed.reason.map_or("?", |r| r.as_str()),
                    ),
                }
            }
            (unsatisfied, None) => Command::Reject {
                presentations,
                reason: ResponseRejection::QueryNotSatisfied,
                detail: unsatisfied.map_or_else(
                    || "the presentations do not satisfy the DCQL query".to_owned(),
                    |u| format!("the presentations do not satisfy the DCQL query: {u}"),
                ),
            },
        };
        Ok((command, also, Some(result)))
    }
}
