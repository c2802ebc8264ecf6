//! `x5c` issuers: a credential whose certificate chain leads to a root the
//! operator registered (`/v1/trust-anchors`) verifies; an expired leaf, a
//! leaf naming another host, a root nobody registered, a removed root:
//! each fails at ISSUER_AUTH with its own reason.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proofline::wallet::{DEMO_VCT, Issuer};
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use serde_json::{Value, json};

use super::world::{World, outcome, presentation_of};

const ISS: &str = "https://issuer.x5c.example";
const HOST: &str = "issuer.x5c.example";

struct Root(CertifiedIssuer<'static, KeyPair>);

impl Root {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// A leaf for `host` certifying `key`, valid from `years.0` to
    /// `years.1` (Jan 1st), as `x5c` carries it.
    fn leaf(&self, key: &ServiceKey, host: &str, years: (i32, i32)) -> Vec<String> {
        let pair = KeyPair::from_pem(&key.to_pem().unwrap()).unwrap();
        let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = date_time_ymd(years.0, 1, 1);
        params.not_after = date_time_ymd(years.1, 1, 1);
        let leaf = params.signed_by(&pair, &*self.0).unwrap();
        vec![STANDARD.encode(leaf.der())]
    }
}

async fn verify_with(world: &World, chain: Vec<String>, key: ServiceKey) -> Value {
    let issuer = Issuer::with_x5c(key, Did::parse(ISS).unwrap(), chain);
    world
        .verify(&presentation_of(&issuer, None, &world.audience))
        .await
}

pub async fn x5c_issuers(world: &World) {
    let root = Root::new("Proofline Test Issuing Root");
    let (status, anchor) = world
        .post_as_operator(
            "/v1/trust-anchors",
            json!({"name": "Test Root", "pem": root.0.pem()}),
        )
        .await;
    assert_eq!(status, 201, "{anchor}");
    assert_eq!(
        anchor["subject"], "CN=Proofline Test Issuing Root",
        "{anchor}"
    );
    assert!(anchor["not_after"].is_string(), "{anchor}");
    let (status, again) = world
        .post_as_operator(
            "/v1/trust-anchors",
            json!({"name": "Same Root", "pem": root.0.pem()}),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    let (status, refused) = world
        .post_as_operator(
            "/v1/trust-anchors",
            json!({"name": "Not a root", "pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, body) = world
        .post_as_operator(
            "/v1/issuers",
            json!({"did": ISS, "name": "X.509 Issuer", "credential_types": [DEMO_VCT], "key_sources": ["x5c"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A chain to the registered root verifies; the record names the source.
    let key = ServiceKey::generate().unwrap();
    let good = root.leaf(&key, HOST, (2020, 2100));
    let answer = verify_with(world, good.clone(), key).await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    let verified = world.events("PresentationVerified").await;
    let used = &verified.last().unwrap()["data"]["key"];
    assert_eq!(used["source"], "x5c", "{used}");
    assert!(
        used["kid"].as_str().unwrap().starts_with("x5t#S256:"),
        "{used}"
    );

    // An expired leaf, a leaf for another host, an unregistered root.
    let key = ServiceKey::generate().unwrap();
    let expired = root.leaf(&key, HOST, (2020, 2021));
    let answer = verify_with(world, expired, key).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("x5c_expired")),
        "{answer}"
    );
    let key = ServiceKey::generate().unwrap();
    let elsewhere = root.leaf(&key, "other.example", (2020, 2100));
    let answer = verify_with(world, elsewhere, key).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("x5c_san_mismatch")),
        "{answer}"
    );
    let stranger = Root::new("Somebody Else's Root");
    let key = ServiceKey::generate().unwrap();
    let unanchored = stranger.leaf(&key, HOST, (2020, 2100));
    let answer = verify_with(world, unanchored, key).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("x5c_unknown_root")),
        "{answer}"
    );

    // Listed; removed; then the good chain anchors nothing.
    let listed = world.get_as_operator("/v1/trust-anchors").await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let id = anchor["anchor_id"].as_str().unwrap();
    let removed = world
        .client
        .delete(format!("{}/v1/trust-anchors/{id}", world.base))
        .bearer_auth(&world.operator_key)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let key = ServiceKey::generate().unwrap();
    let answer = verify_with(world, root.leaf(&key, HOST, (2020, 2100)), key).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("ISSUER_AUTH"), Some("x5c_unknown_root")),
        "{answer}"
    );
}
