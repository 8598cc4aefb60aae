//! Unguessable tokens and comparisons that do not leak through timing.

use sha2::{Digest, Sha256};

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
/// both are hashed to 32 bytes first, and every byte of the digests is compared.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (digest(a), digest(b));
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
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
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret-longer"));
        assert!(!ct_eq(b"", b"x"));
    }
}
