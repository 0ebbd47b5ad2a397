//! Ids that name their owner.
//!
//! Every event id and every record id (topic, assignment, guidance, report, …) is a UUID v7
//! that holds the 6-digit code of the committee that minted it — the event's origin, or the
//! record's owner — in 20 bits of its random part, just above the lowest 32. The rest stays a
//! v7: 48 bits of milliseconds, version and variant, and 54 random bits (collisions within
//! one committee and one millisecond are as unlikely as ever). The lowest 32 bits stay random
//! because they are what the CLI shows and takes as an abbreviation (the last 8 hex digits):
//! the first 8 are the clock, shared by everything made in the same minute.
//!
//! Why: the fold orders a record's events by the hybrid clock their authors stamped, and an
//! author chooses its own stamp. Without this, a committee that had seen a record's id could
//! write an event of its own under that id, stamp it earlier than the owner's, and become
//! the record's "owner" in every node's fold (found in review, regression test
//! `node::tests::a_copied_record_id_does_not_take_the_record_over`). With it, who owns a
//! record is a property of its id: `authz` refuses, at ingest and statelessly, an event that
//! creates or changes a record whose id another committee minted, and `Envelope::open`
//! refuses an event whose id its origin did not mint (so a copied event id is malformed, not
//! a duplicate that hides the real event).

use uuid::Uuid;

/// Bits of the id that carry the owner's code (10^6 < 2^20), and where they start.
const CODE_BITS: u32 = 20;
const CODE_SHIFT: u32 = 32;
const CODE_MASK: u128 = ((1 << CODE_BITS) - 1) << CODE_SHIFT;

/// `base` (a UUID v7) with `owner`'s code in its lowest bits. If `owner` is not a 6-digit
/// code, the id names nobody ([`owner_of`] is `None`) and is refused wherever ownership
/// matters.
pub fn mint(owner: &str, base: Uuid) -> Uuid {
    let code = match code_number(owner) {
        Some(n) => (n as u128) << CODE_SHIFT,
        None => CODE_MASK, // all ones, > 999999: names nobody
    };
    Uuid::from_u128((base.as_u128() & !CODE_MASK) | code)
}

/// A fresh id minted by `owner`.
pub fn new(owner: &str) -> Uuid {
    mint(owner, Uuid::now_v7())
}

/// The committee whose code an id carries; `None` if the low bits hold no 6-digit code.
pub fn owner_of(id: &Uuid) -> Option<String> {
    let n = code_bits(id);
    (n <= 999_999).then(|| format!("{n:06}"))
}

/// Whether `id` was minted by `owner`.
pub fn is_minted_by(id: &Uuid, owner: &str) -> bool {
    code_number(owner).is_some_and(|n| code_bits(id) == n)
}

fn code_bits(id: &Uuid) -> u32 {
    ((id.as_u128() & CODE_MASK) >> CODE_SHIFT) as u32
}

fn code_number(code: &str) -> Option<u32> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        code.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_its_owner_and_stays_a_v7() {
        for code in ["000000", "620000", "620123", "999999", "659004"] {
            let id = new(code);
            assert_eq!(id.get_version_num(), 7, "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(owner_of(&id).as_deref(), Some(code));
            assert!(is_minted_by(&id, code));
            assert!(!is_minted_by(&id, "620100"));
        }
    }

    #[test]
    fn ids_stay_time_ordered_and_distinct() {
        let a = new("620000");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new("620123");
        assert!(a < b);
        let many: std::collections::BTreeSet<Uuid> = (0..10_000).map(|_| new("620000")).collect();
        assert_eq!(many.len(), 10_000);
    }

    #[test]
    fn the_last_eight_digits_stay_random() {
        // The CLI shows and takes the last 8 hex digits; two ids of one committee made in the
        // same millisecond must still differ there.
        let a = new("620000").simple().to_string();
        let b = new("620000").simple().to_string();
        assert_ne!(a[24..], b[24..]);
        let base = Uuid::now_v7();
        assert_eq!(
            mint("620123", base).simple().to_string()[24..],
            base.simple().to_string()[24..]
        );
    }

    #[test]
    fn a_bad_code_names_nobody() {
        let id = mint("62x000", Uuid::now_v7());
        assert_eq!(owner_of(&id), None);
        assert!(!is_minted_by(&id, "62x000"));
        // An arbitrary v7 names a committee only by chance (1 in 2^20 per code).
        assert!(!is_minted_by(&mint("620100", Uuid::now_v7()), "620000"));
    }
}
