//! The rules of each key: turns the attribute's entries into typed options, checking ranges,
//! cron expressions, time zones and uniqueness, and the rules that need the fn as well.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Expr, Lit, LitStr};

use crate::attr::value::{assigned, duration, int, lit, non_empty_string, str_list, string, word, word_list};
use crate::attr::{self, Entry, Value};
use crate::ctxt::Ctxt;
use crate::keys::{ByItem, Key, Policy, State, UniqueKey, Word};
use crate::model::JobFn;
use crate::signature;

/// The most attempts a job may have: a copy of `jobsmith_runtime::MAX_ATTEMPTS_LIMIT` (`i32::MAX`, the
/// largest value the `max_attempts` column holds), which this crate cannot depend on. Keep the two
/// equal; `tests/ui/max-attempts-too-large.rs` and the conformance test of the insert limit pin
/// both.
const MAX_ATTEMPTS_LIMIT: u32 = 2_147_483_647;

/// The heaviest a job may be: a copy of `jobsmith_runtime::MAX_WEIGHT`, for the same reason.
/// `tests/ui/weight-out-of-range.rs` and the conformance test of weights pin both.
const MAX_WEIGHT: u16 = 1_000;

/// The checked options of one `#[job(...)]`. `None` means "not given": the runtime's default.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) queue: Option<LitStr>,
    pub(crate) max_attempts: Option<(u32, Span)>,
    pub(crate) priority: Option<(u8, Span)>,
    pub(crate) weight: Option<(u16, Span)>,
    /// The arg whose value is the job's partition; checked to be an arg of the fn.
    pub(crate) partition: Option<LitStr>,
    /// In milliseconds.
    pub(crate) timeout: Option<(u64, Span)>,
    pub(crate) tags: Option<Vec<LitStr>>,
    pub(crate) unique: Option<Unique>,
    pub(crate) name: Option<LitStr>,
    /// Earlier worker names whose stored rows this job runs.
    pub(crate) aliases: Option<Vec<LitStr>>,
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
    pub(crate) on_conflict: Option<Policy>,
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
    signature::check(job, cx);
    // With a broken parameter list, the arg names may be incomplete; checking the keys against
    // them would report keys that are actually fine.
    if cx.len() == before
        && let Some(keys) = options.unique.as_ref().and_then(|unique| unique.keys.as_ref())
    {
        unique_keys_are_args(keys, job, cx);
    }
    if cx.len() == before
        && let Some(partition) = &options.partition
    {
        partition_is_an_arg(partition, job, cx);
    }
    if cx.len() == before {
        cron_fits(&options, job, cx);
    }
    options
}

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
            Key::Weight => {
                options.weight = int(key, &entry, cx).and_then(|(n, span)| match u16::try_from(n) {
                    Ok(n) if (1..=MAX_WEIGHT).contains(&n) => Some((n, span)),
                    _ => {
                        cx.error_at(
                            span,
                            format!(
                                "`weight` is how many of its queue's slots one run takes: from 1 to {MAX_WEIGHT}, not {n}"
                            ),
                        );
                        None
                    }
                });
            }
            Key::Partition => {
                options.partition = non_empty_string(
                    key,
                    &entry,
                    "name the arg whose value is the job's partition, or remove `partition`",
                    cx,
                );
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
            Key::Aliases => options.aliases = aliases(key, &entry, cx),
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

fn tags(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<Vec<LitStr>> {
    let expr = assigned(key.as_str(), key.example(), entry, cx)?;
    str_list(key.as_str(), key.example(), expr, cx)
}

/// `aliases = ["old::Name", ...]`: non-empty, each once. (That an alias is not another worker's
/// name or alias is checked when the registry is built, the first place that sees them all.)
fn aliases(key: Key, entry: &Entry, cx: &mut Ctxt) -> Option<Vec<LitStr>> {
    let expr = assigned(key.as_str(), key.example(), entry, cx)?;
    let list = str_list(key.as_str(), key.example(), expr, cx)?;
    let mut ok = true;
    for (i, alias) in list.iter().enumerate() {
        if alias.value().is_empty() {
            cx.error_spanned_by(
                alias,
                "an alias cannot be empty: write the worker name rows were stored under",
            );
            ok = false;
        } else if list[..i].iter().any(|earlier| earlier.value() == alias.value()) {
            cx.error_spanned_by(alias, format!("alias `{}` is listed twice: remove one", alias.value()));
            ok = false;
        }
    }
    ok.then_some(list)
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
            UniqueKey::OnConflict => {
                unique.on_conflict = word::<Policy>(key.as_str(), "policy", expr, cx);
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

/// `partition = "..."` names an arg of the fn.
fn partition_is_an_arg(partition: &LitStr, job: &JobFn, cx: &mut Ctxt) {
    let names: Vec<String> = job.args().iter().map(|arg| arg.ident.unraw().to_string()).collect();
    if names.contains(&partition.value()) {
        return;
    }
    let fn_name = job.ident().unraw();
    let message = if names.is_empty() {
        format!(
            "`{fn_name}` has no args, so `partition` has no arg to take the partition from; remove `partition`"
        )
    } else {
        let expected = names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
        format!(
            "`{}` is not an arg of `{fn_name}`; `partition` names the arg whose value is the job's partition: \
             expected one of {expected}",
            partition.value().escape_default()
        )
    };
    cx.error_spanned_by(partition, message);
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
