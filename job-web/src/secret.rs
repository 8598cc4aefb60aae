//! Unguessable tokens and comparisons that do not leak through timing.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// 32 bytes from the operating system's generator as 64 hex characters: session ids and CSRF
/// tokens.
///
/// # Panics
///
/// If the operating system has no working random generator: a dashboard that cannot make
/// unguessable session ids must not start, and nothing weaker is an acceptable fallback.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data`. Sessions are stored under the digest of their id, so a lookup's timing says
/// nothing useful about ids that exist.
pub(crate) fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Whether `a == b`, in a time that depends neither on where they differ nor on their lengths:
/// both are hashed to 32 bytes first, and the digests are compared by `subtle`, which touches
/// every byte and keeps the optimiser from cutting that short. A [`Choice`], so that callers
/// combining several comparisons (user and password) can do so without a branch.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> Choice {
    digest(a).ct_eq(&digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn equality_in_constant_time() {
        let eq = |a: &[u8], b: &[u8]| bool::from(ct_eq(a, b));
        assert!(eq(b"secret", b"secret"));
        assert!(eq(b"", b""));
        // Same length, differing in the first, a middle or the last byte.
        assert!(!eq(b"secret", b"Secret"));
        assert!(!eq(b"secret", b"seCret"));
        assert!(!eq(b"secret", b"secreT"));
        // Different lengths, including a prefix either way and the empty string.
        assert!(!eq(b"secret", b"secret-longer"));
        assert!(!eq(b"secret-longer", b"secret"));
        assert!(!eq(b"secret", b"secre"));
        assert!(!eq(b"", b"x"));
        assert!(!eq(b"x", b""));
    }
}
