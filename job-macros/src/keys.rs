//! Every word the attribute understands, each declared once.
//!
//! The parser looks words up here and the "expected one of" messages list them from here, so
//! adding a key is one line in a table (plus the `match` arms the compiler then asks for).

/// A closed set of words, declared with `words!`.
pub(crate) trait Word: Copy + Eq + 'static {
    /// Every word, in the order the messages list them.
    const ALL: &'static [Self];

    /// The word as written in the attribute.
    fn as_str(self) -> &'static str;

    /// A correct use of the word, for error messages.
    fn example(self) -> &'static str;

    /// The word spelled `text`, if any.
    fn from_text(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|word| word.as_str() == text)
    }

    /// "`a`, `b`, `c`", for "expected one of" messages.
    fn expected() -> String {
        Self::ALL.iter().map(|word| format!("`{}`", word.as_str())).collect::<Vec<_>>().join(", ")
    }
}

/// Declares a closed set of words: an enum, the spelling of each variant, an example of its use,
/// and the list for "expected one of" messages.
macro_rules! words {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, example $example:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $crate::keys::Word for $name {
            const ALL: &'static [$name] = &[$($name::$variant,)*];

            fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }

            fn example(self) -> &'static str {
                match self {
                    $( $name::$variant => $example, )*
                }
            }
        }
    };
}

words! {
    /// The keys of `#[job(...)]`.
    Key {
        Queue => "queue", example "queue = \"emails\"";
        MaxAttempts => "max_attempts", example "max_attempts = 5";
        Priority => "priority", example "priority = 1";
        Weight => "weight", example "weight = 5";
        Partition => "partition", example "partition = \"clinic_id\"";
        Timeout => "timeout", example "timeout = \"30s\"";
        Tags => "tags", example "tags = [\"billing\"]";
        Unique => "unique", example "unique(period = \"5m\")";
        Name => "name", example "name = \"send_reminder\"";
        Aliases => "aliases", example "aliases = [\"old::path::SendReminder\"]";
        Crate => "crate", example "crate = \"my_crate::jobsmith\"";
        Backoff => "backoff", example "backoff = my_backoff";
        Cron => "cron", example "cron = \"0 2 * * *\"";
        Timezone => "timezone", example "timezone = \"America/New_York\"";
    }
}

words! {
    /// The keys inside `unique(...)`.
    UniqueKey {
        Period => "period", example "period = \"5m\"";
        By => "by", example "by = [worker, args]";
        Keys => "keys", example "keys = [\"account_id\"]";
        States => "states", example "states = [available, scheduled]";
        OnConflict => "on_conflict", example "on_conflict = reschedule";
    }
}

words! {
    /// The values of `unique(on_conflict = ...)`; each names an `OnConflict` variant.
    Policy {
        Keep => "keep", example "on_conflict = keep";
        ReplaceArgs => "replace_args", example "on_conflict = replace_args";
        Reschedule => "reschedule", example "on_conflict = reschedule";
        Replace => "replace", example "on_conflict = replace";
    }
}

impl Policy {
    /// The name of the `OnConflict` variant this word names: the word in PascalCase.
    pub(crate) fn variant(self) -> String {
        heck::ToUpperCamelCase::to_upper_camel_case(Word::as_str(self))
    }
}

words! {
    /// The items of `unique(by = [...])`: what makes two jobs "the same".
    ByItem {
        Worker => "worker", example "by = [worker]";
        Queue => "queue", example "by = [queue]";
        Args => "args", example "by = [args]";
    }
}

words! {
    /// The items of `unique(states = [...])`; each names a `JobState` variant.
    State {
        Available => "available", example "states = [available]";
        Scheduled => "scheduled", example "states = [scheduled]";
        Executing => "executing", example "states = [executing]";
        Retryable => "retryable", example "states = [retryable]";
        Completed => "completed", example "states = [completed]";
        Discarded => "discarded", example "states = [discarded]";
        Cancelled => "cancelled", example "states = [cancelled]";
    }
}

impl State {
    /// The name of the `JobState` variant this word names: the word in PascalCase, as the runtime
    /// spells it (`JobState` serializes with `rename_all = "lowercase"`).
    pub(crate) fn variant(self) -> String {
        heck::ToUpperCamelCase::to_upper_camel_case(Word::as_str(self))
    }
}
