//! Subresource Integrity: the SRI spec's examples, digests computed here
//! with sha2, and the choice of the strongest algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use proofline_domain::discovery::{
    IntegrityAlgorithm, IntegrityError, check_integrity, integrity_of,
};
use sha2::{Digest, Sha256, Sha384, Sha512};

const HELLO: &[u8] = b"alert('Hello, world.');";

#[test]
fn integrity_matches_the_sri_specs_examples() {
    let sha256 = "sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng=";
    let sha384 = "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO";
    let sha512 = "sha512-Q2bFTOhEALkN8hOms2FKTDLy7eugP2zFZ1T8LCvX42Fp3WoNr3bjZSAHeOsHrbV1Fu9/A0EzCinRE7Af1ofPrw==";
    assert_eq!(integrity_of(HELLO), sha256);
    for integrity in [sha256, sha384, sha512] {
        assert_eq!(check_integrity(integrity, HELLO), Ok(()), "{integrity}");
        assert!(
            matches!(
                check_integrity(integrity, b"alert('Hi');"),
                Err(IntegrityError::Mismatch(_))
            ),
            "{integrity}"
        );
    }
    // The spec's example with options, which are ignored.
    assert_eq!(
        check_integrity(&format!("{sha384}?ct=application/javascript"), HELLO),
        Ok(())
    );
}

#[test]
fn integrity_digests_computed_here_agree() {
    for bytes in [&b""[..], b"{}", HELLO, &[0u8; 1000]] {
        let digests = [
            format!("sha256-{}", STANDARD.encode(Sha256::digest(bytes))),
            format!("sha384-{}", STANDARD.encode(Sha384::digest(bytes))),
            format!("sha512-{}", STANDARD.encode(Sha512::digest(bytes))),
            // unpadded, as some writers emit
            format!("sha256-{}", STANDARD_NO_PAD.encode(Sha256::digest(bytes))),
            format!("sha512-{}", STANDARD_NO_PAD.encode(Sha512::digest(bytes))),
        ];
        assert_eq!(digests[0], integrity_of(bytes));
        for integrity in &digests {
            assert_eq!(check_integrity(integrity, bytes), Ok(()), "{integrity}");
        }
    }
}

#[test]
fn only_the_strongest_algorithm_counts() {
    use IntegrityAlgorithm::{Sha256, Sha384, Sha512};
    let digest = |alg: IntegrityAlgorithm, bytes: &[u8]| {
        format!("{alg}-{}", STANDARD.encode(alg.digest(bytes)))
    };
    let (good, bad) = (HELLO, &b"something else"[..]);
    // A right weaker digest does not save a wrong stronger one.
    let weak_right = format!("{} {}", digest(Sha256, good), digest(Sha384, bad));
    assert_eq!(
        check_integrity(&weak_right, good),
        Err(IntegrityError::Mismatch(Sha384))
    );
    // A wrong weaker digest does not spoil a right stronger one.
    let strong_right = format!(
        "{}  {}\t{}",
        digest(Sha512, good),
        digest(Sha256, bad),
        digest(Sha384, bad)
    );
    assert_eq!(check_integrity(&strong_right, good), Ok(()));
    // Any one digest of the strongest algorithm matching passes.
    let one_of = format!(
        "{} {} {}",
        digest(Sha512, bad),
        digest(Sha512, good),
        digest(Sha256, good)
    );
    assert_eq!(check_integrity(&one_of, good), Ok(()));
    // A malformed digest of the strongest algorithm matches nothing.
    let malformed = format!("sha512-!!notbase64!! {}", digest(Sha256, good));
    assert_eq!(
        check_integrity(&malformed, good),
        Err(IntegrityError::Mismatch(Sha512))
    );
    // Algorithm names are case-insensitive.
    assert_eq!(
        check_integrity(&digest(Sha256, good).replacen("sha", "SHA", 1), good),
        Ok(())
    );
    // Unknown algorithms are ignored, even when "stronger".
    let with_unknown = format!("sha3_512-AAAA md5-AAAA {}", digest(Sha256, good));
    assert_eq!(check_integrity(&with_unknown, good), Ok(()));
}

#[test]
fn integrity_without_a_supported_algorithm_is_an_error() {
    for integrity in [
        "",
        "   ",
        "md5-AAAA",
        "sha1-AAAA sha3_256-AAAA",
        "sha256",
        "qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng=",
    ] {
        assert_eq!(
            check_integrity(integrity, HELLO),
            Err(IntegrityError::NoSupportedAlgorithm),
            "{integrity:?}"
        );
    }
    let long = format!("{} {}", integrity_of(HELLO), "x".repeat(5000));
    assert_eq!(check_integrity(&long, HELLO), Err(IntegrityError::TooLong));
}
