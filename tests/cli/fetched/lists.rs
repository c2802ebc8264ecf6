//! Status lists fetched by URI: seen once, fetched again after `ttl`,
//! failing closed, and refusing what must be refused with nothing logged.

use std::time::Duration;

use proofline::wallet::Issuer;
use proofline_commands::signing::ServiceKey;

use super::world::{Doc, World, list_token, now, outcome, step_detail};

/// Waits out `seconds` of a list's `ttl` (whole seconds, as `ttl` counts).
async fn past_ttl(seconds: u64) {
    tokio::time::sleep(Duration::from_millis(seconds * 1_000 + 1_100)).await;
}

/// A list never seen verifies after one fetch; the issuer revokes, and
/// after `ttl` the next verification fails at REVOCATION with no operator
/// action; the server goes down, and once the list is due it fails closed.
pub async fn fetched_then_revoked_then_unavailable(world: &World) {
    let path = "/lists/1";
    let uri = world.server.url(path);
    let published = &world.server.published;
    // A ttl of a few seconds: the second verification comes well within
    // it, however loaded the machine.
    published.put(path, Doc::token(world.list(&uri, &[0; 16], now() - 10, 4)));

    let answer = world.verify(&world.presentation(&uri, 3)).await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    assert_eq!(published.hits(path), 1, "fetched once");
    let fetched = world.events("StatusListFetched").await;
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert_eq!(fetched[0]["data"]["uri"], uri.as_str());
    assert_eq!(fetched[0]["data"]["http_status"], 200);
    assert!(
        fetched[0]["data"]["token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );

    // Within its ttl the list is not fetched again.
    let answer = world.verify(&world.presentation(&uri, 3)).await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    assert_eq!(published.hits(path), 1, "still fresh: not fetched");

    // The issuer revokes entry 3.
    let mut statuses = [0u8; 16];
    statuses[3] = 1;
    published.put(path, Doc::token(world.list(&uri, &statuses, now(), 1)));
    past_ttl(4).await;
    let answer = world.verify(&world.presentation(&uri, 3)).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("REVOCATION"), Some("status_revoked")),
        "{answer}"
    );
    assert_eq!(world.events("StatusListFetched").await.len(), 2);
    // The record names the list version and when it was fetched.
    let rejected = world.events("PresentationRejected").await;
    let status = &rejected.last().unwrap()["data"]["status"];
    assert_eq!(status["list_version"], 2, "{status}");
    assert!(status["fetched_at"].is_string(), "{status}");

    // Fetched again unchanged: nothing is appended.
    past_ttl(1).await;
    let answer = world.verify(&world.presentation(&uri, 4)).await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    assert_eq!(world.events("StatusListFetched").await.len(), 2);

    // The server goes down: once the list is due, fail closed.
    world.server.stop();
    past_ttl(1).await;
    let answer = world.verify(&world.presentation(&uri, 4)).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("REVOCATION"), Some("status_list_unavailable")),
        "{answer}"
    );
    assert!(
        step_detail(&answer, "REVOCATION").contains("could not be fetched"),
        "{answer}"
    );
}

/// A list signed by another issuer, a list larger than the cap, a
/// redirect to http: each refused with its own reason, nothing appended.
pub async fn refused_lists(world: &World) {
    let published = &world.server.published;
    let stranger = Issuer::new(ServiceKey::generate().unwrap());
    let cases: Vec<(&str, Doc, &str)> = vec![
        (
            "/lists/stranger",
            Doc::token(list_token(
                &stranger,
                &world.server.url("/lists/stranger"),
                &[0; 16],
                now() - 10,
                60,
            )),
            "is not the issuer whose key signed the list",
        ),
        (
            "/lists/huge",
            Doc::Body {
                content_type: "application/statuslist+jwt",
                body: vec![b'a'; 2 * 1024 * 1024],
                delay: Duration::ZERO,
            },
            "larger than",
        ),
        (
            "/lists/redirected",
            Doc::Redirect(format!(
                "http://localhost:{}/lists/1",
                world.server.address.port()
            )),
            "redirect refused: a redirect to http",
        ),
        (
            "/lists/missing",
            Doc::Redirect(world.server.url("/nowhere")),
            "HTTP 404",
        ),
    ];
    for (path, doc, why) in cases {
        published.put(path, doc);
        let uri = world.server.url(path);
        let answer = world.verify(&world.presentation(&uri, 1)).await;
        assert_eq!(
            outcome(&answer),
            (false, Some("REVOCATION"), Some("status_list_unavailable")),
            "{path}: {answer}"
        );
        let detail = step_detail(&answer, "REVOCATION");
        assert!(
            detail.contains(why),
            "{path}: {detail:?} should say {why:?}"
        );
    }
    assert!(
        world.events("StatusListFetched").await.is_empty(),
        "nothing refused is appended"
    );
}

/// A name that resolves to an address the guard refuses (no allowed
/// networks: `localhost` is loopback): refused before any request, with
/// its own reason.
pub async fn refused_address(world: &World) {
    let path = "/lists/guarded";
    let uri = world.server.url(path);
    world
        .server
        .published
        .put(path, Doc::token(world.list(&uri, &[0; 16], now() - 10, 60)));
    let answer = world.verify(&world.presentation(&uri, 1)).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("REVOCATION"), Some("status_list_unavailable")),
        "{answer}"
    );
    let detail = step_detail(&answer, "REVOCATION");
    assert!(
        detail.contains("localhost resolves to a loopback address"),
        "{detail}"
    );
    assert_eq!(world.server.published.hits(path), 0, "never reached");
    assert!(world.events("StatusListFetched").await.is_empty());
}

/// 1,000 verifications at once naming one list never seen: one fetch.
pub async fn one_fetch_for_many(world: &World) {
    let path = "/lists/popular";
    let uri = world.server.url(path);
    let token = world.list(&uri, &[0; 16], now() - 10, 300);
    world.server.published.put(
        path,
        Doc::Body {
            content_type: "application/statuslist+jwt",
            body: token.into_bytes(),
            // Long enough for every verification to ask while it is fetched.
            delay: Duration::from_secs(2),
        },
    );
    let presentations: Vec<(String, String)> =
        (0..1_000).map(|_| world.presentation(&uri, 2)).collect();
    let answers = futures::future::join_all(presentations.iter().map(|p| world.verify(p))).await;
    for answer in &answers {
        assert_eq!(outcome(answer), (true, None, None), "{answer}");
    }
    assert_eq!(world.server.published.hits(path), 1, "one fetch for 1,000");
    assert_eq!(world.events("StatusListFetched").await.len(), 1);
}

/// With `PROOFLINE_STATUS_LIST_STALE_GRACE_SECONDS`, a list that is due
/// and cannot be fetched is still used for the grace (and only then).
pub async fn stale_within_grace(world: &World) {
    let path = "/lists/graced";
    let uri = world.server.url(path);
    let published = &world.server.published;
    published.put(path, Doc::token(world.list(&uri, &[0; 16], now() - 10, 1)));
    let answer = world.verify(&world.presentation(&uri, 3)).await;
    assert_eq!(outcome(&answer), (true, None, None), "{answer}");
    world.server.stop();
    past_ttl(1).await;
    let answer = world.verify(&world.presentation(&uri, 3)).await;
    assert_eq!(
        outcome(&answer),
        (true, None, None),
        "due, unreachable, within the grace: {answer}"
    );
    assert_eq!(world.events("StatusListFetched").await.len(), 1);
}

/// A list its issuer serves past its `exp`: REVOCATION
/// `status_list_expired`, nothing appended.
pub async fn expired_at_the_source(world: &World) {
    use proofline_domain::status_list::{TOKEN_TYPE, encode_lst};
    let path = "/lists/stale-upstream";
    let uri = world.server.url(path);
    let token = world.issuer.key.sign_jws(
        &serde_json::json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": world.issuer.kid()}),
        &serde_json::json!({"iss": world.issuer.did.as_str(), "sub": uri, "iat": now() - 7_200,
                "exp": now() - 3_600, "status_list": {"bits": 1, "lst": encode_lst(&[0; 16], 1)}}),
    );
    world.server.published.put(path, Doc::token(token));
    let before = world.events("StatusListFetched").await.len();
    let answer = world.verify(&world.presentation(&uri, 1)).await;
    assert_eq!(
        outcome(&answer),
        (false, Some("REVOCATION"), Some("status_list_expired")),
        "{answer}"
    );
    assert!(
        step_detail(&answer, "REVOCATION").contains("the list expired"),
        "{answer}"
    );
    assert_eq!(world.events("StatusListFetched").await.len(), before);
}
