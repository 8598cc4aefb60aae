//! Parses the tokens of `#[job(...)]` into keyed entries, keeping every token for error spans.
//!
//! This layer only knows the shape `key`, `key = value` and `key(...)`, and which keys exist; what
//! each value must look like is read by `value`, and what it means is checked in `rules`.

pub(crate) mod value;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token, token};

use crate::ctxt::Ctxt;
use crate::keys::Word;

/// One `key`, `key = value` or `key(...)`.
pub(crate) struct Entry {
    /// The key as written; its span is where "unknown key" and "duplicate key" point.
    pub(crate) key: Ident,
    /// What follows the key.
    pub(crate) value: Value,
}

/// What follows a key.
pub(crate) enum Value {
    /// Nothing: `unique`.
    Flag,
    /// `= value`. Every value the attribute takes is an expression (literal, path or array), so
    /// parsing `Expr` keeps literal-type checks out of the grammar and in `value`.
    Assign(Expr),
    /// `(...)`, parsed later by the key that takes it (only `unique`).
    List(token::Paren, TokenStream),
}

impl Entry {
    /// The tokens of the whole entry, for errors about "this key and its value".
    pub(crate) fn to_tokens(&self) -> TokenStream {
        let key = &self.key;
        match &self.value {
            Value::Flag => key.to_token_stream(),
            Value::Assign(expr) => quote::quote!(#key = #expr),
            Value::List(paren, tokens) => {
                let mut out = key.to_token_stream();
                paren.surround(&mut out, |out| out.extend(tokens.clone()));
                out
            }
        }
    }
}

/// Parses `a = 1, b(...), c` into entries, with the keys of table `W` looked up.
///
/// An unknown or repeated key is reported and its entry dropped, so the remaining keys are still
/// checked. `within` names the enclosing key (`unique`) for messages, or is empty at the top.
pub(crate) fn parse<W: Word>(tokens: TokenStream, within: &str, cx: &mut Ctxt) -> Vec<(W, Entry)> {
    let entries = match (|input: ParseStream<'_>| parse_entries::<W>(input)).parse2(tokens) {
        Ok(entries) => entries,
        Err(error) => {
            // A grammar error leaves nothing reliable to check; report it alone.
            cx.syn_error(error);
            return Vec::new();
        }
    };
    let place = if within.is_empty() { String::new() } else { format!(" in `{within}(...)`") };
    let mut known: Vec<(W, Entry)> = Vec::new();
    for entry in entries {
        let text = entry.key.unraw().to_string();
        match W::from_text(&text) {
            None => {
                cx.error_spanned_by(
                    &entry.key,
                    format!("unknown key `{text}`{place}; expected one of {}", W::expected()),
                );
            }
            Some(word) if known.iter().any(|(seen, _)| *seen == word) => {
                cx.error_spanned_by(
                    &entry.key,
                    format!("duplicate key `{text}`{place}: it is already set earlier; keep one of the two"),
                );
            }
            Some(word) => known.push((word, entry)),
        }
    }
    known
}

fn parse_entries<W: Word>(input: ParseStream<'_>) -> syn::Result<Vec<Entry>> {
    let entries = Punctuated::<Entry, Token![,]>::parse_terminated_with(input, parse_entry::<W>)?;
    Ok(entries.into_iter().collect())
}

fn parse_entry<W: Word>(input: ParseStream<'_>) -> syn::Result<Entry> {
    if !input.peek(Ident::peek_any) {
        let example = W::ALL[0].example();
        return Err(
            input.error(format!("expected `key = value`, like `{example}`; the keys are {}", W::expected()))
        );
    }
    // `Ident::parse_any` accepts keywords, so `crate = "..."` parses as a key.
    let key = input.call(Ident::parse_any)?;
    let value = if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Value::Assign(input.parse()?)
    } else if input.peek(token::Paren) {
        let content;
        let paren = syn::parenthesized!(content in input);
        Value::List(paren, content.parse()?)
    } else {
        Value::Flag
    };
    Ok(Entry { key, value })
}
