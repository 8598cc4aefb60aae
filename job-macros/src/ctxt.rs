//! Collects errors so one expansion reports every independent mistake at once, and writes tokens
//! as text for their messages.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// The errors found so far. Checks push into it and carry on, so a user with two unrelated
/// mistakes sees both; a check whose input already failed skips itself instead of reporting a
/// follow-on error.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
    /// Set when the fn is something rustc itself rejects (such as `const async fn`): nothing is
    /// generated, and no error is added to rustc's.
    left_to_rustc: bool,
}

impl Ctxt {
    /// An error whose caret covers `tokens` (from their first to their last token).
    pub(crate) fn error_spanned_by(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// An error at one span.
    pub(crate) fn error_at(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// An error syn already built, such as a parse error.
    pub(crate) fn syn_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Gives up on the expansion without an error of our own, because rustc reports the mistake
    /// on the fn (which is emitted unchanged) and a second message would only repeat it.
    pub(crate) fn leave_to_rustc(&mut self) {
        self.left_to_rustc = true;
    }

    /// How many errors were collected; checks compare it before and after to learn whether they
    /// found something.
    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    /// `Ok` if nothing was reported, else one `compile_error!` per error.
    pub(crate) fn finish(self) -> Result<(), TokenStream> {
        if self.errors.is_empty() && !self.left_to_rustc {
            Ok(())
        } else {
            Err(self.errors.iter().map(syn::Error::to_compile_error).collect())
        }
    }
}

/// Tokens as a person would write them, for messages: `Vec<&'a str>`, not `Vec < & 'a str >`.
pub(crate) fn source(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :", ":"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        text = text.replace(from, to);
    }
    text
}
