//! Reads the value of one attribute entry: a string, an integer, a duration or a list.
//!
//! Each reader reports a value of the wrong shape, with the fix written out, and returns `None`;
//! what the value means for the job (ranges, cron, uniqueness) is checked in `rules`.

use std::time::Duration;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Expr, ExprArray, ExprLit, Lit, LitStr, UnOp};

use crate::attr::{Entry, Value};
use crate::ctxt::{Ctxt, source};
use crate::keys::{Key, Word};

/// The value of `key = value`, or an error saying a value is needed.
pub(crate) fn assigned<'e>(key: &str, example: &str, entry: &'e Entry, cx: &mut Ctxt) -> Option<&'e Expr> {
    match &entry.value {
        Value::Assign(expr) => Some(expr),
        Value::Flag | Value::List(..) => {
            cx.error_spanned_by(entry.to_tokens(), format!("`{key}` needs a value: write `{example}`"));
            None
        }
    }
}

/// The literal of a literal expression, seeing through the invisible groups macros add.
pub(crate) fn lit(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => lit(&group.expr),
        _ => None,
    }
}

/// The source text of a number or bool literal, to suggest quoting it: `queue = 3` becomes
/// `queue = "3"`.
pub(crate) fn unquoted_text(expr: &Expr) -> Option<String> {
    match lit(expr)? {
        Lit::Int(int) => Some(int.to_string()),
        Lit::Float(float) => Some(float.to_string()),
        Lit::Bool(bool) => Some(bool.value.to_string()),
        _ => None,
    }
}

/// A string literal.
pub(crate) fn string(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<LitStr> {
    let expr = assigned(key.as_str(), key.example(), entry, cx)?;
    if let Some(Lit::Str(lit)) = lit(expr) {
        return Some(lit.clone());
    }
    let example = match unquoted_text(expr) {
        Some(text) => format!("{} = \"{text}\"", key.as_str()),
        None => key.example().to_owned(),
    };
    cx.error_spanned_by(expr, format!("`{}` takes a string: write `{example}`", key.as_str()));
    None
}

/// A string literal that is not `""`; `instead` says what to do rather than give an empty one.
pub(crate) fn non_empty_string(key: Key, entry: &Entry, instead: &str, cx: &mut Ctxt) -> Option<LitStr> {
    let lit = string(key, entry, cx)?;
    if lit.value().is_empty() {
        cx.error_spanned_by(lit, format!("`{}` must not be empty; {instead}", key.as_str()));
        return None;
    }
    Some(lit)
}

/// A non-negative integer and its span. A negative number is reported here, saying what range
/// the key allows; the caller checks the upper bounds.
pub(crate) fn int(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<(u64, Span)> {
    let expr = assigned(key.as_str(), key.example(), entry, cx)?;
    match (lit(expr), expr) {
        (Some(Lit::Int(int)), _) => match int.base10_parse::<u64>() {
            Ok(n) => Some((n, int.span())),
            Err(_) => {
                cx.error_spanned_by(int, format!("`{}` is too large", key.as_str()));
                None
            }
        },
        (_, Expr::Unary(unary)) if matches!(unary.op, UnOp::Neg(_)) && lit(&unary.expr).is_some() => {
            let allowed = match key {
                Key::Priority => "from 0 (runs first) to 9 (runs last)",
                _ => "at least 1",
            };
            cx.error_spanned_by(expr, format!("`{}` must be {allowed}, not negative", key.as_str()));
            None
        }
        _ => {
            let example = match lit(expr) {
                Some(Lit::Str(lit)) if lit.value().trim().parse::<u64>().is_ok() => {
                    format!("{} = {}", key.as_str(), lit.value().trim())
                }
                _ => key.example().to_owned(),
            };
            cx.error_spanned_by(expr, format!("`{}` takes an integer: write `{example}`", key.as_str()));
            None
        }
    }
}

/// A duration string, in whole milliseconds, and the span of the string.
pub(crate) fn duration(
    key: &str,
    example: &str,
    entry: &Entry,
    if_none: &str,
    cx: &mut Ctxt,
) -> Option<(u64, Span)> {
    let expr = assigned(key, example, entry, cx)?;
    let Some(Lit::Str(lit)) = lit(expr) else {
        // `timeout = 30s` lexes as an integer with suffix `s`: suggest quoting it.
        let example = match unquoted_text(expr) {
            Some(text) if text.chars().any(|c| c.is_ascii_alphabetic()) => format!("{key} = \"{text}\""),
            _ => example.to_owned(),
        };
        cx.error_spanned_by(expr, format!("`{key}` takes a duration in a string: write `{example}`"));
        return None;
    };
    let text = lit.value();
    let parsed = match humantime::parse_duration(&text) {
        Ok(parsed) => parsed,
        Err(error) => {
            cx.error_spanned_by(
                lit,
                format!(
                    "`{key}` must be a duration like \"30s\", \"5m\", \"1h30m\" or \"250ms\"; \
                     \"{}\" is not one ({error})",
                    text.escape_default()
                ),
            );
            return None;
        }
    };
    if parsed.is_zero() {
        cx.error_spanned_by(lit, format!("`{key}` must be longer than zero; {if_none}"));
        return None;
    }
    if parsed.subsec_nanos() % 1_000_000 != 0 {
        cx.error_spanned_by(lit, format!("`{key}` must be a whole number of milliseconds, like \"250ms\""));
        return None;
    }
    match u64::try_from(parsed.as_millis()) {
        Ok(millis) if Duration::from_millis(millis) == parsed => Some((millis, lit.span())),
        _ => {
            cx.error_spanned_by(lit, format!("`{key}` is too long"));
            None
        }
    }
}

/// `[a, b]`, or an error that shows how to write the list.
pub(crate) fn array<'e>(
    key: &str,
    example: &str,
    what: &str,
    expr: &'e Expr,
    cx: &mut Ctxt,
) -> Option<&'e ExprArray> {
    match expr {
        Expr::Array(array) => Some(array),
        Expr::Group(group) => array(key, example, what, &group.expr, cx),
        _ => {
            // A single item: suggest wrapping it, `tags = "a"` becomes `tags = ["a"]`.
            let example = if matches!(lit(expr), Some(Lit::Str(_))) || matches!(expr, Expr::Path(_)) {
                format!("{key} = [{}]", source(expr))
            } else {
                example.to_owned()
            };
            cx.error_spanned_by(expr, format!("`{key}` takes a list of {what}: write `{example}`"));
            None
        }
    }
}

/// A list of string literals, each checked to be non-empty.
pub(crate) fn str_list(key: &str, example: &str, expr: &Expr, cx: &mut Ctxt) -> Option<Vec<LitStr>> {
    let array = array(key, example, "strings", expr, cx)?;
    let before = cx.len();
    let mut out = Vec::new();
    for elem in &array.elems {
        match lit(elem) {
            Some(Lit::Str(lit)) if lit.value().is_empty() => {
                cx.error_spanned_by(lit, format!("the items of `{key}` must not be empty strings"));
            }
            Some(Lit::Str(lit)) => out.push(lit.clone()),
            _ => {
                let example = match (unquoted_text(elem), elem) {
                    (Some(text), _) => format!("\"{text}\""),
                    (None, Expr::Path(path)) => format!("\"{}\"", source(path)),
                    _ => "\"...\"".to_owned(),
                };
                cx.error_spanned_by(elem, format!("`{key}` takes a list of strings: write `{example}`"));
            }
        }
    }
    (cx.len() == before).then_some(out)
}

/// One word from table `W`, written bare (`on_conflict = replace`).
pub(crate) fn word<W: Word>(key: &str, what: &str, expr: &Expr, cx: &mut Ctxt) -> Option<W> {
    let ident = match expr {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => path.path.get_ident(),
        _ => None,
    };
    let Some(ident) = ident else {
        let written = match lit(expr) {
            Some(Lit::Str(lit)) => format!(": write `{}` without quotes", lit.value()),
            _ => String::new(),
        };
        cx.error_spanned_by(expr, format!("expected one of {} for `{key}`{written}", W::expected()));
        return None;
    };
    let text = ident.unraw().to_string();
    let found = W::from_text(&text);
    if found.is_none() {
        cx.error_spanned_by(
            ident,
            format!("unknown {what} `{text}` for `{key}`; expected one of {}", W::expected()),
        );
    }
    found
}

/// A list of words from table `W`, each at most once.
pub(crate) fn word_list<W: Word>(
    key: &str,
    example: &str,
    what: &str,
    expr: &Expr,
    cx: &mut Ctxt,
) -> Option<Vec<W>> {
    let array = array(key, example, what, expr, cx)?;
    let before = cx.len();
    let mut out = Vec::new();
    for elem in &array.elems {
        let ident = match elem {
            Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => path.path.get_ident(),
            _ => None,
        };
        let Some(ident) = ident else {
            let written = match lit(elem) {
                Some(Lit::Str(lit)) => format!(": write `{}` without quotes", lit.value()),
                _ => String::new(),
            };
            cx.error_spanned_by(elem, format!("expected one of {} in `{key}`{written}", W::expected()));
            continue;
        };
        let text = ident.unraw().to_string();
        match W::from_text(&text) {
            None => cx.error_spanned_by(
                ident,
                format!("unknown {what} `{text}` in `{key}`; expected one of {}", W::expected()),
            ),
            Some(word) if out.contains(&word) => {
                cx.error_spanned_by(ident, format!("`{text}` is listed twice in `{key}`; keep one"))
            }
            Some(word) => out.push(word),
        }
    }
    if cx.len() != before {
        return None;
    }
    if out.is_empty() {
        cx.error_spanned_by(
            array,
            format!("`{key}` must list at least one of {}; remove `{key}` for the default", W::expected()),
        );
        return None;
    }
    Some(out)
}
