//! Checks the parsed attribute and fn, turning attribute entries into typed options.
//!
//! Every check reports into the `Ctxt` and carries on, so independent mistakes are reported
//! together; a check that depends on a failed one is skipped, so one mistake gives one error.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{
    Expr, ExprArray, ExprLit, GenericArgument, Lit, LitStr, Pat, PathArguments, ReturnType, Type, UnOp,
    parse_quote,
};

use crate::attr::{self, Entry, Value};
use crate::ctxt::Ctxt;
use crate::keys::{ByItem, Key, State, UniqueKey, Word};
use crate::model::{JobFn, Param, is_context};

/// The most attempts a job may have: a copy of `jobsmith_runtime::MAX_ATTEMPTS_LIMIT` (`i32::MAX`, the
/// largest value the `max_attempts` column holds), which this crate cannot depend on. Keep the two
/// equal; `tests/ui/max-attempts-too-large.rs` and the conformance test of the insert limit pin
/// both.
const MAX_ATTEMPTS_LIMIT: u32 = 2_147_483_647;

/// The checked options of one `#[job(...)]`. `None` means "not given": the runtime's default.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) queue: Option<LitStr>,
    pub(crate) max_attempts: Option<(u32, Span)>,
    pub(crate) priority: Option<(u8, Span)>,
    /// In milliseconds.
    pub(crate) timeout: Option<(u64, Span)>,
    pub(crate) tags: Option<Vec<LitStr>>,
    pub(crate) unique: Option<Unique>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) backoff: Option<syn::ExprPath>,
    /// A cron expression, checked at compile time.
    pub(crate) cron: Option<LitStr>,
    /// An IANA time zone for `cron`, checked at compile time.
    pub(crate) timezone: Option<LitStr>,
}

/// The checked `unique` / `unique(...)`. Empty means the runtime's `UniqueOptions::DEFAULT`.
#[derive(Default)]
pub(crate) struct Unique {
    /// In milliseconds.
    pub(crate) period: Option<(u64, Span)>,
    pub(crate) by: Option<By>,
    pub(crate) keys: Option<Vec<LitStr>>,
    pub(crate) states: Option<Vec<State>>,
}

/// `by = [...]`: which parts make two jobs the same.
#[derive(Default, Clone, Copy)]
pub(crate) struct By {
    pub(crate) worker: bool,
    pub(crate) queue: bool,
    pub(crate) args: bool,
}

/// Checks the attribute's entries and the fn, and the one thing that needs both: that
/// `unique(keys = [...])` names args of the fn.
pub(crate) fn check(entries: Vec<(Key, Entry)>, job: &JobFn, cx: &mut Ctxt) -> Options {
    let options = options(entries, cx);
    let before = cx.len();
    signature(job, cx);
    // With a broken parameter list, the arg names may be incomplete; checking the keys against
    // them would report keys that are actually fine.
    if cx.len() == before
        && let Some(keys) = options.unique.as_ref().and_then(|unique| unique.keys.as_ref())
    {
        unique_keys_are_args(keys, job, cx);
    }
    if cx.len() == before {
        cron_fits(&options, job, cx);
    }
    options
}

// ---------------------------------------------------------------------------------------------
// The attribute.

fn options(entries: Vec<(Key, Entry)>, cx: &mut Ctxt) -> Options {
    let mut options = Options::default();
    for (key, entry) in entries {
        match key {
            Key::Queue => {
                options.queue =
                    non_empty_string(key, &entry, "remove `queue` to use the `\"default\"` queue", cx);
            }
            Key::MaxAttempts => {
                options.max_attempts = int(key, &entry, cx).and_then(|(n, span)| {
                    if n == 0 {
                        cx.error_at(
                            span,
                            "`max_attempts` must be at least 1: it counts the first run too; \
                             write `max_attempts = 1` for a job that is never retried",
                        );
                        return None;
                    }
                    match u32::try_from(n) {
                        Ok(n) if n <= MAX_ATTEMPTS_LIMIT => Some((n, span)),
                        _ => {
                            cx.error_at(
                                span,
                                format!(
                                    "`max_attempts` must be at most {MAX_ATTEMPTS_LIMIT}: attempts are \
                                     stored in a 32-bit integer column, so no insert could store {n}"
                                ),
                            );
                            None
                        }
                    }
                });
            }
            Key::Priority => {
                options.priority = int(key, &entry, cx).and_then(|(n, span)| match u8::try_from(n) {
                    Ok(n) if n <= 9 => Some((n, span)),
                    _ => {
                        cx.error_at(
                            span,
                            format!("`priority` must be from 0 (runs first) to 9 (runs last), not {n}"),
                        );
                        None
                    }
                });
            }
            Key::Timeout => {
                options.timeout = duration(
                    key.as_str(),
                    key.example(),
                    &entry,
                    "remove `timeout` to let the job run without a time limit",
                    cx,
                );
            }
            Key::Tags => options.tags = tags(key, &entry, cx),
            Key::Unique => options.unique = unique(&entry, cx),
            Key::Name => {
                options.name = non_empty_string(
                    key,
                    &entry,
                    "remove `name` to use the module path and the struct's name",
                    cx,
                );
            }
            Key::Crate => {
                options.krate = string(key, &entry, cx).and_then(|lit| match lit.parse::<syn::Path>() {
                    Ok(path) => Some(path),
                    Err(_) => {
                        cx.error_spanned_by(
                            &lit,
                            format!(
                                "`crate` takes the path of the `jobsmith` crate or a re-export of it: \
                                 write `{}`",
                                key.example()
                            ),
                        );
                        None
                    }
                });
            }
            Key::Backoff => options.backoff = backoff(key, &entry, cx),
            Key::Cron => options.cron = cron(key, &entry, cx),
            Key::Timezone => options.timezone = timezone(key, &entry, cx),
        }
    }
    options
}

/// A cron expression, checked by the same function the runtime parses it with (`jobsmith_cron::parse`),
/// so the attribute refuses exactly what `CronEntry::new` would, in the same words.
fn cron(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<LitStr> {
    let lit = string(key, entry, cx)?;
    match jobsmith_cron::parse(&lit.value()) {
        Ok(_) => Some(lit),
        Err(e) => {
            cx.error_spanned_by(&lit, e.to_string());
            None
        }
    }
}

/// An IANA time zone name.
fn timezone(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<LitStr> {
    let lit = string(key, entry, cx)?;
    match lit.value().parse::<chrono_tz::Tz>() {
        Ok(_) => Some(lit),
        Err(_) => {
            cx.error_spanned_by(
                &lit,
                format!(
                    "unknown time zone `{}`; use an IANA name like `America/New_York`, `Europe/Paris` or `UTC`",
                    lit.value().escape_default()
                ),
            );
            None
        }
    }
}

/// `cron` jobs are inserted by the runtime with empty args, so the fn may take only the context;
/// `timezone` means nothing without `cron`.
fn cron_fits(options: &Options, job: &JobFn, cx: &mut Ctxt) {
    if let (Some(tz), None) = (&options.timezone, &options.cron) {
        cx.error_spanned_by(
            tz,
            "`timezone` applies to a `cron` schedule: add `cron = \"...\"` or remove `timezone`",
        );
    }
    if let Some(cron) = &options.cron {
        let args = job.args();
        if let Some(first) = args.first() {
            cx.error_spanned_by(
                cron,
                format!(
                    "a `cron` job is inserted by the runtime with no args, but `{}` takes `{}`; remove its \
                     parameters (the context may stay), or schedule it with `RuntimeBuilder::cron(expr, job)`",
                    job.ident().unraw(),
                    first.ident.unraw()
                ),
            );
        }
    }
}

/// The value of `key = value`, or an error saying a value is needed.
fn assigned<'e>(key: &str, example: &str, entry: &'e Entry, cx: &mut Ctxt) -> Option<&'e Expr> {
    match &entry.value {
        Value::Assign(expr) => Some(expr),
        Value::Flag | Value::List(..) => {
            cx.error_spanned_by(entry.to_tokens(), format!("`{key}` needs a value: write `{example}`"));
            None
        }
    }
}

/// The literal of a literal expression, seeing through the invisible groups macros add.
fn lit(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => lit(&group.expr),
        _ => None,
    }
}

/// The source text of a number or bool literal, to suggest quoting it: `queue = 3` becomes
/// `queue = "3"`.
fn unquoted_text(expr: &Expr) -> Option<String> {
    match lit(expr)? {
        Lit::Int(int) => Some(int.to_string()),
        Lit::Float(float) => Some(float.to_string()),
        Lit::Bool(bool) => Some(bool.value.to_string()),
        _ => None,
    }
}

/// A string literal.
fn string(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<LitStr> {
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
fn non_empty_string(key: Key, entry: &Entry, instead: &str, cx: &mut Ctxt) -> Option<LitStr> {
    let lit = string(key, entry, cx)?;
    if lit.value().is_empty() {
        cx.error_spanned_by(lit, format!("`{}` must not be empty; {instead}", key.as_str()));
        return None;
    }
    Some(lit)
}

/// A non-negative integer and its span. A negative number is reported here, saying what range
/// the key allows; the caller checks the upper bounds.
fn int(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<(u64, Span)> {
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
fn duration(key: &str, example: &str, entry: &Entry, if_none: &str, cx: &mut Ctxt) -> Option<(u64, Span)> {
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
fn array<'e>(key: &str, example: &str, what: &str, expr: &'e Expr, cx: &mut Ctxt) -> Option<&'e ExprArray> {
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
fn str_list(key: &str, example: &str, expr: &Expr, cx: &mut Ctxt) -> Option<Vec<LitStr>> {
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

/// A list of words from table `W`, each at most once.
fn word_list<W: Word>(key: &str, example: &str, what: &str, expr: &Expr, cx: &mut Ctxt) -> Option<Vec<W>> {
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

fn tags(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<Vec<LitStr>> {
    let expr = assigned(key.as_str(), key.example(), entry, cx)?;
    str_list(key.as_str(), key.example(), expr, cx)
}

fn backoff(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<syn::ExprPath> {
    let expr = assigned(key.as_str(), key.example(), entry, cx)?;
    match expr {
        Expr::Path(path) => Some(path.clone()),
        _ => {
            let example = match lit(expr) {
                Some(Lit::Str(lit)) if lit.parse::<syn::Path>().is_ok() => {
                    format!("backoff = {}", lit.value())
                }
                _ => key.example().to_owned(),
            };
            cx.error_spanned_by(
                expr,
                format!("`backoff` takes the path of a `fn(u32) -> Duration`: write `{example}`"),
            );
            None
        }
    }
}

fn unique(entry: &Entry, cx: &mut Ctxt) -> Option<Unique> {
    let tokens = match &entry.value {
        Value::Flag => return Some(Unique::default()),
        Value::List(_, tokens) => tokens.clone(),
        Value::Assign(expr) => {
            let instead = match lit(expr) {
                Some(Lit::Bool(b)) if b.value => "write `unique` alone".to_owned(),
                Some(Lit::Bool(_)) => "remove `unique` for a job without uniqueness".to_owned(),
                _ => format!(
                    "write `unique` for the defaults, or `{}` with any of {}",
                    Key::Unique.example(),
                    UniqueKey::expected()
                ),
            };
            cx.error_spanned_by(entry.to_tokens(), format!("`unique` takes no value: {instead}"));
            return None;
        }
    };
    let before = cx.len();
    let mut unique = Unique::default();
    // Where `keys` was given, for the error if `by` leaves out `args`.
    let mut keys_entry = None;
    for (key, entry) in attr::parse::<UniqueKey>(tokens, "unique", cx) {
        let Some(expr) = assigned(key.as_str(), key.example(), &entry, cx) else { continue };
        match key {
            UniqueKey::Period => {
                unique.period = duration(
                    key.as_str(),
                    key.example(),
                    &entry,
                    "remove `period` to stay unique for as long as a job is in `states`",
                    cx,
                );
            }
            UniqueKey::By => {
                unique.by =
                    word_list::<ByItem>(key.as_str(), key.example(), "item", expr, cx).map(|items| By {
                        worker: items.contains(&ByItem::Worker),
                        queue: items.contains(&ByItem::Queue),
                        args: items.contains(&ByItem::Args),
                    });
            }
            UniqueKey::Keys => {
                unique.keys = str_list(key.as_str(), key.example(), expr, cx);
                keys_entry = Some(entry.to_tokens());
            }
            UniqueKey::States => {
                unique.states = word_list::<State>(key.as_str(), key.example(), "state", expr, cx);
                if let Some(states) = &unique.states {
                    // A job moves between these by itself (retry, snooze, rescue); leaving one out
                    // would let a duplicate block the original's own next step.
                    let waiting = [State::Available, State::Scheduled, State::Executing, State::Retryable];
                    let missing: Vec<&str> =
                        waiting.iter().filter(|s| !states.contains(s)).map(|s| Word::as_str(*s)).collect();
                    if !missing.is_empty() {
                        let mut all: Vec<&str> = waiting.iter().map(|s| Word::as_str(*s)).collect();
                        for s in states {
                            if !all.contains(&Word::as_str(*s)) {
                                all.push(Word::as_str(*s));
                            }
                        }
                        cx.error_spanned_by(
                            expr,
                            format!(
                                "unique `states` must include every waiting or running state, or a job's own retry \
                                 could collide with its duplicate; add {}: write `states = [{}]`",
                                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                                all.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }
    if let (Some(by), Some(keys), Some(tokens)) = (unique.by, &unique.keys, keys_entry)
        && !keys.is_empty()
        && !by.args
    {
        let mut items: Vec<&str> = Vec::new();
        for (on, item) in [(by.worker, ByItem::Worker), (by.queue, ByItem::Queue)] {
            if on {
                items.push(item.as_str());
            }
        }
        items.push(ByItem::Args.as_str());
        cx.error_spanned_by(
            tokens,
            format!(
                "`keys` picks the args that make two jobs the same, so `by` must include `args`: \
                 write `by = [{}]`",
                items.join(", ")
            ),
        );
    }
    (cx.len() == before).then_some(unique)
}

fn unique_keys_are_args(keys: &[LitStr], job: &JobFn, cx: &mut Ctxt) {
    // Args are stored under their unraw names (serde strips `r#`), so compare those.
    let names: Vec<String> = job.args().iter().map(|arg| arg.ident.unraw().to_string()).collect();
    for key in keys {
        if names.contains(&key.value()) {
            continue;
        }
        let fn_name = job.ident().unraw();
        let message = if names.is_empty() {
            format!("`{fn_name}` has no args, so `keys` has nothing to pick from; remove `keys`")
        } else {
            let expected = names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
            format!(
                "`{}` is not an arg of `{fn_name}`; `keys` takes arg names: expected one of {expected}",
                key.value().escape_default()
            )
        };
        cx.error_spanned_by(key, message);
    }
}

// ---------------------------------------------------------------------------------------------
// The fn.

fn signature(job: &JobFn, cx: &mut Ctxt) {
    let sig = &job.item.sig;
    match (&sig.constness, &sig.asyncness) {
        // rustc rejects `const async fn` itself: "functions cannot be both `const` and `async`".
        (Some(_), Some(_)) => cx.leave_to_rustc(),
        (Some(constness), None) => {
            cx.error_spanned_by(
                constness,
                "a job fn cannot be `const`: write `async fn` instead of `const fn`",
            );
        }
        (None, None) => cx.error_spanned_by(
            sig.fn_token,
            format!(
                "the `async` keyword is missing: a job fn must be an `async fn`; write `async fn {}(...)`",
                sig.ident
            ),
        ),
        (None, Some(_)) => {}
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "a job fn cannot be `unsafe`: the runtime calls it without upholding any safety contract; \
             remove `unsafe` and use an `unsafe` block inside the fn",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, format!("a job fn cannot have an ABI: remove `{}`", source(abi)));
    }
    // Whether an arg was reported as borrowed: then a lifetime parameter is part of that mistake.
    let mut borrows = false;
    for (index, param) in job.params.iter().enumerate() {
        match param {
            Param::Receiver(receiver) => cx.error_spanned_by(
                receiver,
                "a job fn cannot take `self`: its params become the fields of the job struct; \
                 write a free `async fn` outside the `impl` and pass what it needs as params",
            ),
            Param::Context(typed) if index > 0 => cx.error_spanned_by(
                typed,
                format!("the job context must be the first parameter: move `{}` to the front", source(typed)),
            ),
            Param::Context(_) => {}
            Param::Arg(typed) => {
                let name_ok = arg_pattern(&typed.pat, &typed.ty, cx);
                borrows |= owned_type(&typed.ty, name_ok.then_some(&*typed.pat), cx);
            }
        }
    }
    let lifetimes_only = sig.generics.params.iter().all(|p| matches!(p, syn::GenericParam::Lifetime(_)));
    // `<'a>(x: &'a str)` is one mistake: the borrow, already reported; removing it removes `'a`.
    let explained_by_borrow = lifetimes_only && borrows;
    if !sig.generics.params.is_empty() && !explained_by_borrow {
        let instead = if lifetimes_only {
            "remove them and take owned args, like `String` instead of `&'a str`"
        } else {
            "remove them and use concrete types"
        };
        cx.error_spanned_by(
            &sig.generics,
            format!(
                "a job fn cannot have generic parameters: its args become the fields of the job struct, \
                 which is stored as JSON and needs concrete, owned types; {instead}"
            ),
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "a job fn cannot have a `where` clause: its args become the fields of the job struct, \
             which needs concrete types; remove the `where` clause",
        );
    }
    if sig.variadic.is_some() {
        // rustc rejects `...` outside `extern` fns, and `async` with `...`, by itself.
        cx.leave_to_rustc();
    }
    if let ReturnType::Default = sig.output {
        let fn_token = sig.fn_token;
        let ident = &sig.ident;
        let mut tokens = quote!(#fn_token #ident);
        sig.paren_token.surround(&mut tokens, |tokens| sig.inputs.to_tokens(tokens));
        cx.error_spanned_by(
            tokens,
            "a job fn must return `Result<(), E>` or `Result<jobsmith::Outcome, E>` with `E: Display`: \
             add `-> Result<(), YourError>`",
        );
    }
}

/// Checks that an arg's pattern is a plain name, which becomes the field's name.
fn arg_pattern(pat: &Pat, ty: &Type, cx: &mut Ctxt) -> bool {
    let problem = match pat {
        Pat::Ident(ident) if ident.by_ref.is_some() => {
            Some("remove `ref`: a job arg is passed by value".to_owned())
        }
        Pat::Ident(ident) if ident.subpat.is_some() => {
            Some(format!("write `{}: {}` and match on it in the body", ident.ident, source(ty)))
        }
        Pat::Ident(_) => None,
        Pat::Wild(_) => Some(format!("give it a name, like `name: {}`", source(ty))),
        _ => Some(format!("write `name: {}` and destructure it in the body", source(ty))),
    };
    match problem {
        Some(instead) => {
            cx.error_spanned_by(
                pat,
                format!(
                    "a job param must be a plain name, because it becomes a field of the job struct: {instead}"
                ),
            );
            false
        }
        None => true,
    }
}

/// Checks that an arg's type is owned and concrete: job args are stored as JSON and read back
/// later, so they cannot borrow from the caller or be an opaque `impl Trait`. Serializability
/// itself is left to the compiler (see the comment on `expand::field_serde_attrs`).
///
/// Returns whether it reported a borrow.
fn owned_type(ty: &Type, pat: Option<&Pat>, cx: &mut Ctxt) -> bool {
    if let Type::Reference(reference) = ty
        && is_context(&reference.elem)
    {
        let name = pat.map_or_else(|| "ctx".to_owned(), source);
        cx.error_spanned_by(
            ty,
            format!(
                "the job context is passed by value: write `{name}: {}` as the first parameter",
                source(&reference.elem)
            ),
        );
        return false;
    }
    let Some((part, problem)) = unowned_part(ty) else { return false };
    let message = match problem {
        Unowned::Reference => format!(
            "job args are stored as JSON and must be owned: use `{}` instead of `{}`",
            source(&owned(ty)),
            source(ty)
        ),
        Unowned::Lifetime => format!(
            "job args are stored as JSON and must be owned: use `'static` or an owned type instead of \
             borrowing for `{}`",
            source(&part)
        ),
        Unowned::ImplTrait => "a job arg cannot be `impl Trait`: it becomes a field of the job struct, \
                               which is stored as JSON and needs a concrete type; name the type"
            .to_owned(),
    };
    cx.error_spanned_by(part, message);
    problem != Unowned::ImplTrait
}

/// What makes a part of an arg's type unfit for a field stored as JSON.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Unowned {
    /// `&T`.
    Reference,
    /// A lifetime other than `'static` in a type's generic args: `Cow<'a, str>`.
    Lifetime,
    /// `impl Trait`.
    ImplTrait,
}

/// The first part of `ty` that is borrowed or opaque.
fn unowned_part(ty: &Type) -> Option<(TokenStream, Unowned)> {
    match ty {
        Type::Reference(_) => Some((ty.to_token_stream(), Unowned::Reference)),
        Type::ImplTrait(_) => Some((ty.to_token_stream(), Unowned::ImplTrait)),
        Type::Array(array) => unowned_part(&array.elem),
        Type::Group(group) => unowned_part(&group.elem),
        Type::Paren(paren) => unowned_part(&paren.elem),
        Type::Slice(slice) => unowned_part(&slice.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(unowned_part),
        Type::Path(path) => {
            let in_qself = path.qself.as_ref().and_then(|qself| unowned_part(&qself.ty));
            in_qself.or_else(|| {
                path.path.segments.iter().find_map(|segment| match &segment.arguments {
                    PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                        GenericArgument::Type(ty) => unowned_part(ty),
                        GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                            Some((lifetime.to_token_stream(), Unowned::Lifetime))
                        }
                        _ => None,
                    }),
                    _ => None,
                })
            })
        }
        _ => None,
    }
}

/// `ty` with each reference replaced by the owned type to suggest: `&str` by `String`, `&[T]` by
/// `Vec<T>`, `&Path` by `PathBuf`, `&T` by `T`.
fn owned(ty: &Type) -> Type {
    match ty {
        Type::Reference(reference) => match &*reference.elem {
            Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => parse_quote!(String),
            Type::Path(path) if path.qself.is_none() && path.path.is_ident("Path") => parse_quote!(PathBuf),
            Type::Path(path) if path.qself.is_none() && path.path.is_ident("OsStr") => parse_quote!(OsString),
            Type::Slice(slice) => {
                let elem = owned(&slice.elem);
                parse_quote!(Vec<#elem>)
            }
            elem => owned(elem),
        },
        Type::Array(array) => {
            let mut array = array.clone();
            *array.elem = owned(&array.elem);
            Type::Array(array)
        }
        Type::Paren(paren) => owned(&paren.elem),
        Type::Group(group) => owned(&group.elem),
        Type::Slice(slice) => {
            let mut slice = slice.clone();
            *slice.elem = owned(&slice.elem);
            Type::Slice(slice)
        }
        Type::Tuple(tuple) => {
            let mut tuple = tuple.clone();
            tuple.elems.iter_mut().for_each(|elem| *elem = owned(elem));
            Type::Tuple(tuple)
        }
        Type::Path(path) => {
            let mut path = path.clone();
            for segment in &mut path.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(ty) = arg {
                            *ty = owned(ty);
                        }
                    }
                }
            }
            Type::Path(path)
        }
        other => other.clone(),
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
