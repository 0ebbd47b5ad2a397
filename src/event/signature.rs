//! Checking signatures: one rule for a single check and for a batch.
//!
//! Signing is ed25519 as RFC 8032 has it (`ed25519_dalek`); what a valid signature *is* on
//! the checking side is the rule of ZIP 215 (`ed25519_zebra`): the cofactored equation
//! `[8][s]B = [8]R + [8][k]A`, `s` canonical, `A` and `R` any valid point encoding. Every
//! signature an honest signer makes passes it. Its point is agreement: the single check and
//! the batch check accept exactly the same signatures, so whether a node checked an event in
//! a batch ([`crate::node::prepare`]) or on its own (the writer, an import, `backup verify`)
//! cannot change whether it is stored — also for a signature a key holder crafted with a
//! small-order component on purpose, which `ed25519_dalek`'s batch and single checks judge
//! differently (docs/architecture.md, "Signatures before the writer").
//!
//! The batch check also coalesces the signatures of one key into one term of the equation:
//! a batch from one origin (the usual case on a link: a province's notices, a county's
//! reports) costs about half a multiscalar multiplication of the usual size (BENCHMARKS.md).
use ed25519_dalek::VerifyingKey;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};

/// Keys decompressed for single checks, per thread: decompressing a key costs a quarter of a
/// check, and single checks come in runs from few keys (an import, `backup verify`, the
/// writer's re-checks). Cleared when it reaches this many keys (a national node knows about
/// 3,300), so it stays under a megabyte.
const DECOMPRESSED_KEYS: usize = 4096;

thread_local! {
    static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerificationKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// One signature over `msg` by `key`.
pub fn verify_one(key: &VerifyingKey, msg: &[u8], signature: &[u8; 64]) -> bool {
    let bytes = key.to_bytes();
    let decompressed = KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.get(&bytes) {
            return Some(*k);
        }
        let k = VerificationKey::try_from(bytes).ok()?;
        if keys.len() >= DECOMPRESSED_KEYS {
            keys.clear();
        }
        keys.insert(bytes, k);
        Some(k)
    });
    decompressed.is_some_and(|k| k.verify(&Signature::from_bytes(signature), msg).is_ok())
}

/// Whether every signature of `items` (key, message, signature) verifies. False says only
/// that at least one does not: check them one by one to find which.
pub fn verify_all<'a>(
    items: impl IntoIterator<Item = (&'a VerifyingKey, &'a [u8], &'a [u8; 64])>,
) -> bool {
    let mut verifier = batch::Verifier::new();
    for (key, msg, signature) in items {
        verifier.queue((
            VerificationKeyBytes::from(key.to_bytes()),
            Signature::from_bytes(signature),
            msg,
        ));
    }
    // The batch's random weights need no more than a CSPRNG seeded once per thread.
    verifier.verify(rand::thread_rng()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    fn signed(
        n: usize,
        keys: &[ed25519_dalek::SigningKey],
    ) -> Vec<(VerifyingKey, Vec<u8>, [u8; 64])> {
        (0..n)
            .map(|i| {
                let key = &keys[i % keys.len()];
                let msg = format!("event {i}").into_bytes();
                let sig = key.sign(&msg).to_bytes();
                (key.verifying_key(), msg, sig)
            })
            .collect()
    }

    fn all(items: &[(VerifyingKey, Vec<u8>, [u8; 64])]) -> bool {
        verify_all(items.iter().map(|(k, m, s)| (k, m.as_slice(), s)))
    }

    #[test]
    fn what_ed25519_dalek_signs_verifies_alone_and_in_batches() {
        let keys: Vec<_> = (0..3).map(|_| crate::event::generate_key()).collect();
        for n in [1, 2, 17, 130] {
            let items = signed(n, &keys);
            assert!(all(&items), "a batch of {n} good signatures");
            for (k, m, s) in &items {
                assert!(verify_one(k, m, s));
            }
        }
        assert!(
            verify_all(std::iter::empty()),
            "nothing to check is not a failure"
        );
    }

    #[test]
    fn one_bad_signature_fails_the_batch_and_its_single_check() {
        let keys: Vec<_> = (0..2).map(|_| crate::event::generate_key()).collect();
        let mut items = signed(40, &keys);
        // A changed message, a signature moved to another key, a flipped bit in s.
        items[3].1.push(b'!');
        assert!(!all(&items));
        assert!(!verify_one(&items[3].0, &items[3].1, &items[3].2));
        let mut items = signed(40, &keys);
        // Item i is signed by key i % 2: swap the keys of 7 and 8.
        items[7].0 = keys[0].verifying_key();
        items[8].0 = keys[1].verifying_key();
        assert!(!all(&items));
        assert!(!verify_one(&items[7].0, &items[7].1, &items[7].2));
        let mut items = signed(40, &keys);
        items[39].2[40] ^= 1;
        assert!(!all(&items));
        assert!(!verify_one(&items[39].0, &items[39].1, &items[39].2));
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        // s + l, the same scalar in a non-canonical encoding: RFC 8032 and ZIP 215 refuse it.
        let key = crate::event::generate_key();
        let msg = b"notice";
        let mut sig = key.sign(msg).to_bytes();
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        let vk = key.verifying_key();
        assert!(!verify_one(&vk, msg, &sig));
        assert!(!verify_all([
            (&vk, msg.as_slice(), &sig),
            (&vk, msg.as_slice(), &sig)
        ]));
    }
}
