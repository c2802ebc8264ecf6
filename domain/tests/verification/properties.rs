//! Properties: nothing panics, and nothing that was not made right verifies.

use proofline_domain::verification::Step;
use proptest::prelude::*;

use crate::support::World;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let world = World::new();
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(!world.verify(&text).verified());
    }

    #[test]
    fn random_tilde_joined_parts_never_verify(parts in proptest::collection::vec("[A-Za-z0-9_.-]{0,80}", 0..12)) {
        let world = World::new();
        prop_assert_eq!(world.verify(&parts.join("~")).failed_step, Some(Step::Decode));
    }

    #[test]
    fn mutated_presentations_never_verify(position in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let world = World::new();
        let (issued, disclosures) = world.issue();
        let refs: Vec<&str> = disclosures.iter().map(String::as_str).collect();
        let valid = world.present(&issued, &refs);
        let mut bytes = valid.clone().into_bytes();
        let at = position.index(bytes.len());
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        prop_assume!(mutated != valid);
        prop_assert!(!world.verify(&mutated).verified(), "a mutation at {} verified", at);
    }

    #[test]
    fn dropping_or_reordering_disclosures_after_binding_never_verifies(skip in 0usize..6) {
        let world = World::new();
        let (issued, disclosures) = world.issue();
        let refs: Vec<&str> = disclosures.iter().map(String::as_str).collect();
        let valid = world.present(&issued, &refs);
        let kb = valid.rsplit('~').next().unwrap();
        let mut others: Vec<&str> = refs.clone();
        others.remove(skip.min(others.len() - 1));
        let changed = format!("{}{kb}", proofline_domain::sd_jwt::present(&issued, &others, None));
        prop_assert!(!world.verify(&changed).verified());
        let mut reversed = refs.clone();
        reversed.reverse();
        let reordered = format!("{}{kb}", proofline_domain::sd_jwt::present(&issued, &reversed, None));
        prop_assert!(!world.verify(&reordered).verified());
    }
}
