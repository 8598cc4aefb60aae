//! Compile-time behaviour of `#[job]`: every misuse gives one error, at the offending tokens, that
//! says what to write instead (`tests/ui/*.rs` with their reviewed `.stderr`), and the supported
//! forms compile (`tests/ui/pass/*.rs`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test macro_ui`, then review
//! every changed `.stderr`: the caret must point at the mistake and the message must teach the fix.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
