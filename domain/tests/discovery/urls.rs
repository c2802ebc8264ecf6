//! Where the documents are: did:web URLs (the method spec's examples, and
//! what would name another place) and SD-JWT VC issuer metadata URLs.

use proofline_domain::discovery::{DiscoveryError, did_web_url, issuer_metadata_url};

use crate::support::did;

#[test]
fn did_web_urls_are_those_of_the_method_spec() {
    for (text, url) in [
        (
            "did:web:w3c-ccg.github.io",
            "https://w3c-ccg.github.io/.well-known/did.json",
        ),
        (
            "did:web:w3c-ccg.github.io:user:alice",
            "https://w3c-ccg.github.io/user/alice/did.json",
        ),
        (
            "did:web:example.com%3A3000:user:alice",
            "https://example.com:3000/user/alice/did.json",
        ),
        (
            "did:web:example.com",
            "https://example.com/.well-known/did.json",
        ),
        (
            "did:web:example.com%3A8443",
            "https://example.com:8443/.well-known/did.json",
        ),
        (
            "did:web:example.com:user:alice",
            "https://example.com/user/alice/did.json",
        ),
    ] {
        assert_eq!(did_web_url(&did(text)).as_deref(), Ok(url), "{text}");
    }
}

#[test]
fn did_web_hosts_and_paths_are_read_as_written() {
    for (text, url) in [
        // %3A in either case; the default port is the URL's own.
        (
            "did:web:example.com%3a8443",
            "https://example.com:8443/.well-known/did.json",
        ),
        (
            "did:web:example.com%3A443",
            "https://example.com/.well-known/did.json",
        ),
        (
            "did:web:localhost%3A8443",
            "https://localhost:8443/.well-known/did.json",
        ),
        (
            "did:web:Issuer.Example",
            "https://issuer.example/.well-known/did.json",
        ),
        // Percent-encoded octets stay encoded in the path.
        (
            "did:web:example.com:user%20one:a-b_c.d",
            "https://example.com/user%20one/a-b_c.d/did.json",
        ),
        (
            "did:web:xn--bcher-kva.example",
            "https://xn--bcher-kva.example/.well-known/did.json",
        ),
    ] {
        assert_eq!(did_web_url(&did(text)).as_deref(), Ok(url), "{text}");
    }
}

#[test]
fn did_web_urls_that_would_name_another_place_are_refused() {
    for text in [
        // IP addresses, in any of the forms a URL parser reads as one
        "did:web:127.0.0.1",
        "did:web:10.0.0.1%3A8443",
        "did:web:2130706433",
        // ports
        "did:web:example.com%3A",
        "did:web:example.com%3A0",
        "did:web:example.com%3A65536",
        "did:web:example.com%3A123456",
        "did:web:example.com%3A80%3A81",
        "did:web:example.com%3Ahttps",
        // other percent-encodings in the host, hosts that are not names
        "did:web:example.com%2Fevil.com",
        "did:web:evil.com%40example.com",
        "did:web:example.com%3",
        "did:web:example..com",
        "did:web:.example.com",
        "did:web:example.com.",
        "did:web:-example.com",
        "did:web:exa_mple.com",
        "did:web:%3A8443",
        // path segments
        "did:web:example.com::alice",
        "did:web:example.com:..:alice",
        "did:web:example.com:.",
        "did:web:example.com:%2E%2E:alice",
        "did:web:example.com:%2e",
        "did:web:example.com:a%2Fb",
        "did:web:example.com:a%2fb",
        "did:web:example.com:a%5Cb",
        "did:web:example.com:a%00",
        "did:web:example.com:a%zz",
        "did:web:example.com:a%4",
        "did:web:example.com:a%",
    ] {
        assert!(
            matches!(
                did_web_url(&did(text)),
                Err(DiscoveryError::DidWebUrl { .. })
            ),
            "{text}: {:?}",
            did_web_url(&did(text))
        );
    }
    let not_web = did("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK");
    assert!(matches!(
        did_web_url(&not_web),
        Err(DiscoveryError::NotDidWeb(_))
    ));
    let other = did("did:webs:example.com");
    assert!(matches!(
        did_web_url(&other),
        Err(DiscoveryError::NotDidWeb(_))
    ));
}

#[test]
fn issuer_metadata_urls_put_the_well_known_part_before_the_path() {
    for (iss, url) in [
        (
            "https://example.com",
            "https://example.com/.well-known/jwt-vc-issuer",
        ),
        (
            "https://example.com/",
            "https://example.com/.well-known/jwt-vc-issuer",
        ),
        (
            "https://example.com/tenant/1",
            "https://example.com/.well-known/jwt-vc-issuer/tenant/1",
        ),
        (
            "https://example.com/tenant/1/",
            "https://example.com/.well-known/jwt-vc-issuer/tenant/1",
        ),
        (
            "https://example.com:8443/t",
            "https://example.com:8443/.well-known/jwt-vc-issuer/t",
        ),
        (
            "https://127.0.0.1:8443",
            "https://127.0.0.1:8443/.well-known/jwt-vc-issuer",
        ),
    ] {
        assert_eq!(issuer_metadata_url(iss).as_deref(), Ok(url), "{iss}");
    }
    for iss in [
        "http://example.com",
        "https://example.com?tenant=1",
        "https://example.com/?",
        "https://example.com#frag",
        "https://user@example.com",
        "https://user:pass@example.com",
        "did:web:example.com",
        "example.com",
        "",
        &format!("https://example.com/{}", "a".repeat(3000)),
    ] {
        assert!(
            matches!(
                issuer_metadata_url(iss),
                Err(DiscoveryError::InvalidIssuer { .. })
            ),
            "{iss}"
        );
    }
}
