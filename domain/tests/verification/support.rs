//! An issuer, a holder and a verifier for tests: credentials issued and
//! presented with the crate's own builder, verified through the same
//! `Resolved` trust the service uses.

use chrono::{TimeZone, Utc};
use proofline_domain::decider::Decider;
use proofline_domain::did::Did;
use proofline_domain::issuer::{Issuer, IssuerCommand, IssuerDecider, Kid, RegisteredKey, Vct};
use proofline_domain::jose::PublicKey;
use proofline_domain::jose::b64url_encode;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::log::Timestamp;
use proofline_domain::sd_jwt::{Issuance, KeyBinding, digest, present};
use proofline_domain::status_list::testing::lst;
use proofline_domain::status_list::{
    ListUri, StatusList, StatusListCommand, StatusListDecider, TOKEN_TYPE, verify_token,
};
use proofline_domain::values::Name;
use proofline_domain::verification::{
    ClaimPath, Outcome, Profile, Reason, Request, Resolved, Step, X5cTrust, verify,
};
use serde_json::{Map, Value, json};

pub const NOW: i64 = 1_790_000_000;
pub const VCT: &str = "https://credentials.example/income";
pub const NONCE: &str = "n-0193b2d4";
pub const AUDIENCE: &str = "urn:proofline:lender:test";
pub const LIST_URI: &str = "https://issuer.example/status/7";

pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_datetime(Utc.timestamp_opt(NOW + secs, 0).unwrap())
}

pub struct World {
    pub issuer_key: TestKey,
    pub holder_key: TestKey,
    pub did: Did,
    pub issuer: Issuer,
    pub list: Option<StatusList>,
    /// Why the list could not be fetched, when it could not.
    pub list_unavailable: Option<String>,
    /// Why the issuer's keys could not be resolved, when they could not.
    pub keys_unavailable: Option<String>,
    /// Why the credential's `x5c` chain is not trusted, when it is not.
    pub x5c_refusal: Option<(Reason, String)>,
    /// Why the pinned type metadata does not match, when it does not.
    pub type_metadata_invalid: Option<String>,
    pub required: Vec<ClaimPath>,
    pub require_holder_binding: bool,
    pub now: Timestamp,
}

fn salts() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("salt-{n:04}-0123456789")
    }
}

impl World {
    /// A did:key issuer (Ed25519) trusted for `VCT`, and an ES256 holder.
    pub fn new() -> Self {
        let issuer_key = TestKey::ed25519(11);
        let PublicKey::Ed25519(public) = issuer_key.public() else {
            unreachable!()
        };
        let did = Did::from_ed25519(&public);
        let issuer = Self::issuer_of(&did, &[], t(-10_000));
        Self {
            issuer_key,
            holder_key: TestKey::p256(12),
            did,
            issuer,
            list: None,
            list_unavailable: None,
            keys_unavailable: None,
            x5c_refusal: None,
            type_metadata_invalid: None,
            required: Vec::new(),
            require_holder_binding: true,
            now: t(0),
        }
    }

    /// A did:web issuer whose key is P-256 (kid `k1`), for the other curve.
    pub fn with_web_issuer() -> Self {
        let mut world = Self::new();
        world.issuer_key = TestKey::p256(21);
        world.did = Did::parse("did:web:issuer.example").unwrap();
        let register = IssuerCommand::Register {
            did: world.did.clone(),
            name: Name::parse("name", "Web Issuer").unwrap(),
            keys: vec![RegisteredKey {
                kid: Kid::parse("k1").unwrap(),
                jwk: world.issuer_key.public().to_jwk(),
            }],
            credential_types: Some(vec![Vct::parse(VCT).unwrap()]),
            key_sources: None,
        };
        world.issuer =
            IssuerDecider::fold(&IssuerDecider::decide(&register, &None, t(-10_000)).unwrap())
                .unwrap();
        world
    }

    pub fn issuer_of(did: &Did, then: &[IssuerCommand], at: Timestamp) -> Issuer {
        let register = IssuerCommand::Register {
            did: did.clone(),
            name: Name::parse("name", "Test Issuer").unwrap(),
            keys: vec![],
            credential_types: Some(vec![Vct::parse(VCT).unwrap()]),
            key_sources: None,
        };
        let mut events = IssuerDecider::decide(&register, &None, at).unwrap();
        for command in then {
            let state = IssuerDecider::fold(&events);
            events.extend(IssuerDecider::decide(command, &state, at).unwrap());
        }
        IssuerDecider::fold(&events).unwrap()
    }

    /// Applies issuer commands (suspend, retire) at `at`.
    pub fn issuer_does(&mut self, command: IssuerCommand, at: Timestamp) {
        let mut events = vec![];
        let current = Some(self.issuer.clone());
        events.extend(IssuerDecider::decide(&command, &current, at).unwrap());
        self.issuer = events.iter().fold(current, IssuerDecider::evolve).unwrap();
    }

    /// Publishes a status list with `statuses` (1 bit per entry unless a 2 is in it).
    pub fn publish_list(&mut self, statuses: &[u8]) {
        self.list = Some(self.list_of(statuses, None));
    }

    /// The list this world's issuer publishes at `LIST_URI` at `t(0)`, with
    /// `statuses` (1 bit per entry unless one is over 1, then 2) and `exp`,
    /// checked and folded as the service does; not installed in the world.
    pub fn list_of(&self, statuses: &[u8], exp: Option<i64>) -> StatusList {
        let bits = if statuses.iter().any(|s| *s > 1) {
            2
        } else {
            1
        };
        let kid = self.issuer.keys[0].kid.as_str().to_owned();
        let mut claims = json!({"sub": LIST_URI, "iat": NOW - 100, "status_list": {"bits": bits, "lst": lst(statuses, bits)}});
        if let Some(exp) = exp {
            claims["exp"] = json!(exp);
        }
        let token = self.issuer_key.sign(
            &json!({"alg": self.issuer_key.alg(), "typ": TOKEN_TYPE, "kid": kid}),
            &claims,
        );
        let uri = ListUri::parse(LIST_URI).unwrap();
        let verified = verify_token(&token, &uri, &self.issuer, t(0)).unwrap();
        let events =
            StatusListDecider::decide(&StatusListCommand::Publish { list: verified }, &None, t(0))
                .unwrap();
        StatusListDecider::fold(&events).unwrap()
    }

    /// The standard credential's claims (see [`World::issue_with`]), before
    /// any is concealed, with `extra` merged in (a `null` removes a claim).
    pub fn claims(&self, extra: Value) -> Map<String, Value> {
        let mut payload = json!({
            "iss": self.did.as_str(),
            "iat": NOW - 3600,
            "exp": NOW + 3600,
            "vct": VCT,
            "given_name": "Erika",
            "family_name": "Mustermann",
            "address": {"country": "DE", "locality": "Köln"},
            "nationalities": ["DE", "FR"],
            "cnf": {"jwk": serde_json::to_value(self.holder_key.public().to_jwk()).unwrap()},
        });
        merge(&mut payload, extra);
        payload.as_object().unwrap().clone()
    }

    /// The issued SD-JWT (`<JWT>~`) of `payload` exactly as given, signed by
    /// the issuer under the standard header: for payloads [`Issuance`] would
    /// not make (a foreign `_sd_alg`, a malformed `_sd`, Disclosures referenced
    /// from the wrong place).
    pub fn sign_credential(&self, payload: &Map<String, Value>) -> String {
        let kid = self.issuer.keys[0].kid.as_str().to_owned();
        let header = json!({"alg": self.issuer_key.alg(), "typ": "dc+sd-jwt", "kid": kid});
        format!(
            "{}~",
            self.issuer_key
                .sign(&header, &Value::Object(payload.clone()))
        )
    }

    /// The standard credential: given_name, family_name and address.country
    /// selectively disclosable (address.country nested inside a concealed
    /// address), two nationalities concealed as array elements, decoys.
    pub fn issue_with(&self, extra: Value, header: Option<Value>) -> (String, Vec<String>) {
        let mut issuance = Issuance::new(self.claims(extra), salts());
        issuance
            .conceal("given_name")
            .unwrap()
            .conceal("family_name")
            .unwrap()
            .conceal("address.country")
            .unwrap()
            .conceal("address")
            .unwrap()
            .conceal_element("nationalities", 0)
            .unwrap()
            .conceal_element("nationalities", 1)
            .unwrap()
            .decoy()
            .decoy();
        let kid = self.issuer.keys[0].kid.as_str().to_owned();
        let header = header.unwrap_or_else(
            || json!({"alg": self.issuer_key.alg(), "typ": "dc+sd-jwt", "kid": kid}),
        );
        issuance.sign(&header, |input| self.issuer_key.sign_raw(input))
    }

    pub fn issue(&self) -> (String, Vec<String>) {
        self.issue_with(json!({}), None)
    }

    /// A presentation of `jwt` with `disclosures`, bound with `nonce`,
    /// `audience` and `iat` by `key` (the holder's, unless another is given).
    pub fn present_bound(
        &self,
        issued: &str,
        disclosures: &[&str],
        nonce: &str,
        audience: &str,
        iat: i64,
        key: &TestKey,
    ) -> String {
        let header = json!({"alg": key.alg(), "typ": "kb+jwt"});
        let mut sign = |input: &[u8]| key.sign_raw(input);
        present(
            issued,
            disclosures,
            Some(KeyBinding {
                header: &header,
                sign: &mut sign,
                nonce,
                audience,
                iat,
            }),
        )
    }

    /// A presentation of `issued` with `disclosures` and a Key Binding JWT
    /// signed by the holder, its usual header (`alg`, `typ: kb+jwt`) and
    /// claims (`nonce`, `aud`, `iat` five seconds ago, the right `sd_hash`)
    /// changed by `header` and `claims` (a `null` removes a member): for Key
    /// Binding JWTs [`present`] would not make.
    pub fn present_kb(
        &self,
        issued: &str,
        disclosures: &[&str],
        header: Value,
        claims: Value,
    ) -> String {
        let head = present(issued, disclosures, None);
        let mut kb_header = json!({"alg": self.holder_key.alg(), "typ": "kb+jwt"});
        merge(&mut kb_header, header);
        let mut payload =
            json!({"nonce": NONCE, "aud": AUDIENCE, "iat": NOW - 5, "sd_hash": digest(&head)});
        merge(&mut payload, claims);
        format!("{head}{}", self.holder_key.sign(&kb_header, &payload))
    }

    pub fn present(&self, issued: &str, disclosures: &[&str]) -> String {
        self.present_bound(
            issued,
            disclosures,
            NONCE,
            AUDIENCE,
            NOW - 5,
            &self.holder_key,
        )
    }

    pub fn verify(&self, presentation: &str) -> Outcome {
        let request = Request {
            nonce: NONCE,
            audience: AUDIENCE,
            required_claims: &self.required,
            require_holder_binding: self.require_holder_binding,
            max_age_seconds: 300,
            now: self.now,
            profile: Profile::SdJwtVc,
        };
        verify(
            presentation,
            &request,
            &Resolved {
                issuer: Some(&self.issuer),
                list: self.list.as_ref(),
                list_unavailable: self.list_unavailable.as_deref(),
                list_expired: None,
                keys_unavailable: self.keys_unavailable.as_deref(),
                x5c: self
                    .x5c_refusal
                    .as_ref()
                    .map(|(reason, why)| X5cTrust::Refused(*reason, why)),
                type_metadata_invalid: self.type_metadata_invalid.as_deref(),
            },
        )
    }

    /// Issues the standard credential with `extra` and `header` (see
    /// [`World::issue_with`]), presents every Disclosure, bound by the
    /// holder, and verifies it.
    pub fn verify_issued(&self, extra: Value, header: Option<Value>) -> Outcome {
        let (issued, disclosures) = self.issue_with(extra, header);
        let refs: Vec<&str> = disclosures.iter().map(String::as_str).collect();
        self.verify(&self.present(&issued, &refs))
    }
}

/// Sets every member of the object `extra` in the object `base`, removing
/// those it sets to `null`.
fn merge(base: &mut Value, extra: Value) {
    let base = base.as_object_mut().expect("an object");
    for (name, value) in extra.as_object().cloned().unwrap_or_default() {
        if value.is_null() {
            base.remove(&name);
        } else {
            base.insert(name, value);
        }
    }
}

/// A Disclosure of `parts` (`[salt, name, value]` or `[salt, value]`): its
/// text and the digest that references it.
pub fn disclosure(parts: &Value) -> (String, String) {
    let text = b64url_encode(serde_json::to_vec(parts).unwrap());
    let digest = digest(&text);
    (text, digest)
}

/// `(failed step, reason)` of an outcome (or a record), as compared.
pub type Failure = (Option<Step>, Option<Reason>);

/// `(failed step, reason)` of an outcome, for compact assertions.
pub fn failure(outcome: &Outcome) -> Failure {
    (outcome.failed_step, outcome.reason)
}
