//! Runs the stages (parse, check) and writes the generated code: the job of a valid fn, or beside
//! the errors of an invalid one, stubs that keep the rest of the user's crate free of follow-on
//! errors.

use proc_macro2::{Delimiter, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Item, LitStr, ReturnType, Type};

use crate::attr;
use crate::ctxt::Ctxt;
use crate::keys::Key;
use crate::model::{JobFn, Param};
use crate::rules::{self, Options, Unique};
use crate::signature;

/// The marker of the second stage: `#[job(__jobsmith_generated { items })]` on the job struct.
const GENERATED: &str = "__jobsmith_generated";

/// The whole macro: `attr` is the inside of `#[job(...)]`, `item` what it is attached to.
///
/// On an error in the attribute or the signature the output is the item exactly as written, one
/// `compile_error!` per error, and a stub of the job struct and its impls (see `stub`), so that
/// code using the struct elsewhere gets no second error.
pub(crate) fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(items) = generated_items(&attr) {
        return quote!(#item #items);
    }
    let mut cx = Ctxt::default();
    let entries = attr::parse::<Key>(attr, "", &mut cx);
    // A `crate` key whose value failed leaves no path to name jobsmith by: the stub then has no
    // impls, which would be resolved against a path that may not exist.
    let crate_given = entries.iter().any(|(key, _)| *key == Key::Crate);
    let job = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(item_fn)) => JobFn::new(item_fn),
        Ok(other) => {
            not_a_fn(&other, &mut cx);
            return with_errors(item, cx);
        }
        Err(error) => {
            cx.syn_error(error);
            return with_errors(item, cx);
        }
    };
    let options = rules::check(entries, &job, &mut cx);
    match cx.finish() {
        Ok(()) => generate(&job, &options),
        Err(errors) => {
            let stub = stub(&job, &options, crate_given);
            quote!(#item #errors #stub)
        }
    }
}

/// The items of the second stage, if `attr` is `__jobsmith_generated { items }`.
///
/// Why two stages: the job struct and everything that names it (impls, registration) are allowed
/// only at module level, and an attribute cannot see whether its fn is a free fn or sits in an
/// `impl` block. So the first stage emits the struct alone, with this attribute carrying the
/// rest. At module level the struct parses, the attribute runs and emits the rest beside it; in
/// an `impl` block rustc rejects the struct ("struct is not supported in `trait`s or `impl`s",
/// at `#[job]`) and drops it with its attribute, so that one error is the only one, instead of
/// one for each generated item and for every name they use.
fn generated_items(attr: &TokenStream) -> Option<TokenStream> {
    let mut tokens = attr.clone().into_iter();
    match (tokens.next(), tokens.next(), tokens.next()) {
        (Some(TokenTree::Ident(marker)), Some(TokenTree::Group(group)), None)
            if marker == GENERATED && group.delimiter() == Delimiter::Brace =>
        {
            Some(group.stream())
        }
        _ => None,
    }
}

/// `struct_item` with `rest` attached for the second stage (see `generated_items`).
fn with_rest(
    krate: &TokenStream,
    cfgs: &[&Attribute],
    struct_item: TokenStream,
    rest: TokenStream,
) -> TokenStream {
    let marker = Ident::new(GENERATED, Span::call_site());
    quote! {
        #(#cfgs)*
        #[#krate::job(#marker { #rest })]
        #struct_item
    }
}

/// The job struct and `Job` impl of a fn with errors, so that uses of the struct elsewhere (a
/// `use`, a struct literal, `.build()`) give no error beside the real one: the struct with the
/// fields whose params were fine, and impls that need nothing of the field types, whose bodies
/// never run because compilation already fails.
///
/// None for a fn that takes `self`: it is in an `impl` or a trait, where a struct is not allowed.
fn stub(job: &JobFn, options: &Options, crate_given: bool) -> TokenStream {
    if job.params.iter().any(|param| matches!(param, Param::Receiver(_))) {
        return TokenStream::new();
    }
    let item = &job.item;
    let vis = &item.vis;
    let struct_ident = job.struct_ident();
    let cfgs: Vec<&Attribute> = item.attrs.iter().filter(|attr| attr.path().is_ident("cfg")).collect();
    let docs = struct_docs(job);
    let generic = !item.sig.generics.params.is_empty();
    let fields =
        job.args().into_iter().filter(|arg| !generic && signature::fits_a_stub_field(arg.ty)).map(|arg| {
            let (ident, ty) = (arg.ident, arg.ty);
            quote!(#[doc = " An arg of the job."] #vis #ident: #ty)
        });
    let struct_item = quote! {
        #(#docs)*
        #vis struct #struct_ident {
            #(#fields,)*
        }
    };
    let krate = match &options.krate {
        Some(path) => path.to_token_stream(),
        None if crate_given => return quote!(#(#cfgs)* #struct_item),
        None => quote!(::jobsmith),
    };
    let private = quote!(#krate::__private);
    let serde = quote!(#private::serde);
    let (ser, de) = (Ident::new("S", Span::mixed_site()), Ident::new("D", Span::mixed_site()));
    let name = struct_ident.to_string();
    let job_options = job_options(options, &private);
    let rest = quote! {
        #(#cfgs)*
        const _: () = {
            impl ::core::clone::Clone for #struct_ident {
                fn clone(&self) -> Self {
                    ::core::unreachable!()
                }
            }
            impl ::core::fmt::Debug for #struct_ident {
                fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::unreachable!()
                }
            }
            impl #serde::Serialize for #struct_ident {
                fn serialize<#ser>(&self, _: #ser) -> ::core::result::Result<#ser::Ok, #ser::Error>
                where
                    #ser: #serde::Serializer,
                {
                    ::core::unreachable!()
                }
            }
            impl<'de> #serde::Deserialize<'de> for #struct_ident {
                fn deserialize<#de>(_: #de) -> ::core::result::Result<Self, #de::Error>
                where
                    #de: #serde::Deserializer<'de>,
                {
                    ::core::unreachable!()
                }
            }
            impl #private::Job for #struct_ident {
                type Output = ();
                const NAME: &'static str = #name;
                #[allow(clippy::needless_update)]
                const OPTIONS: #private::JobOptions = #job_options;
                fn perform(self, _: #private::JobContext) -> #private::PerformFuture {
                    ::core::unreachable!()
                }
            }
        };
    };
    with_rest(&krate, &cfgs, struct_item, rest)
}

fn with_errors(item: TokenStream, cx: Ctxt) -> TokenStream {
    let errors = cx.finish().err();
    quote!(#item #errors)
}

/// Reports `#[job]` on something other than a fn, at the item's keyword.
fn not_a_fn(item: &Item, cx: &mut Ctxt) {
    let (keyword, what): (TokenStream, &str) = match item {
        Item::Struct(item) => (item.struct_token.to_token_stream(), "a struct"),
        Item::Enum(item) => (item.enum_token.to_token_stream(), "an enum"),
        Item::Union(item) => (item.union_token.to_token_stream(), "a union"),
        Item::Trait(item) => (item.trait_token.to_token_stream(), "a trait"),
        Item::Impl(item) => (item.impl_token.to_token_stream(), "an impl block"),
        Item::Mod(item) => (item.mod_token.to_token_stream(), "a module"),
        Item::Const(item) => (item.const_token.to_token_stream(), "a const"),
        Item::Static(item) => (item.static_token.to_token_stream(), "a static"),
        Item::Type(item) => (item.type_token.to_token_stream(), "a type alias"),
        Item::Use(item) => (item.use_token.to_token_stream(), "a `use`"),
        other => (other.to_token_stream(), "this item"),
    };
    let hint = match item {
        Item::Struct(_) | Item::Enum(_) => {
            "; to make an existing type a job, implement `jobsmith::Job` for it by hand"
        }
        _ => "",
    };
    cx.error_spanned_by(
        keyword,
        format!(
            "`#[job]` goes on an `async fn`, not on {what}: the job struct is generated from the fn's \
             params, so write `#[job] async fn name(arg: Type, ..) -> Result<(), E>`{hint}"
        ),
    );
}

/// The fn unchanged, the job struct, and (in an unnamed const, so no helper leaks into the user's
/// namespace) the `Job` impl, the checks and the registration, which the struct's second-stage
/// attribute emits (see `generated_items`).
fn generate(job: &JobFn, options: &Options) -> TokenStream {
    let krate = options.krate.as_ref().map_or_else(|| quote!(::jobsmith), ToTokens::to_token_stream);
    let private = quote!(#krate::__private);
    let item = &job.item;
    let vis = &item.vis;
    let fn_ident = job.ident();
    let struct_ident = job.struct_ident();
    let cfgs: Vec<&Attribute> = item.attrs.iter().filter(|attr| attr.path().is_ident("cfg")).collect();

    let docs = struct_docs(job);
    let args = job.args();
    let fields = args.iter().map(|arg| {
        let (ident, ty) = (arg.ident, arg.ty);
        let doc = format!(" Arg `{}` of `{fn_ident}`.", ident.unraw());
        let serde = field_serde_attrs(ty, &private);
        quote!(#[doc = #doc] #serde #vis #ident: #ty)
    });
    // serde reads its crate path from a string; a path prints as `:: a :: b`, which it parses.
    let serde_crate = quote!(#private::serde).to_string();
    let serialize = serialize_impl(job, &private);

    let name = match &options.name {
        Some(name) => name.to_token_stream(),
        None => {
            let suffix = format!("::{struct_ident}");
            quote!(::core::concat!(::core::module_path!(), #suffix))
        }
    };
    let job_options = job_options(options, &private);
    let backoff = options.backoff.as_ref().map(|path| {
        // The path goes through a typed binding so a fn of the wrong type is reported at the path,
        // as "expected fn pointer `fn(u32) -> Duration`".
        let (attempt, f) = (Ident::new("attempt", Span::mixed_site()), Ident::new("f", Span::mixed_site()));
        let binding = quote_spanned!(path.span()=> let #f: fn(u32) -> #private::Duration = #path;);
        quote! {
            fn backoff(#attempt: u32) -> #private::Duration {
                #binding
                #f(#attempt)
            }
        }
    });
    let returns = Returns::of(job);
    let output_type = returns.output_type();
    let perform = perform(job, &returns, &private);
    let states = states_const(job, &private);
    let aliases = options.aliases.as_ref().map(|aliases| {
        quote! { const ALIASES: &'static [&'static str] = &[#(#aliases),*]; }
    });

    let struct_item = quote! {
        #(#docs)*
        #[derive(
            #private::serde::Deserialize,
            ::core::fmt::Debug,
            ::core::clone::Clone,
        )]
        #[serde(crate = #serde_crate)]
        #vis struct #struct_ident {
            #(#fields,)*
        }
    };
    let (query_item, query_impls) = query_type(job, &krate, &private);
    let rest = quote! {
        #(#cfgs)*
        #query_item

        #(#cfgs)*
        const _: () = {
            #serialize
            #query_impls

            impl #private::Job for #struct_ident {
                type Output = #output_type;
                const NAME: &'static str = #name;
                // With every key given, `..DEFAULT` updates nothing; it stays so that a field
                // added to the options later keeps its default.
                #[allow(clippy::needless_update)]
                const OPTIONS: #private::JobOptions = #job_options;
                #states
                #aliases
                #backoff
                #perform
            }

            #private::inventory::submit! {
                #private::WorkerEntry::of::<#struct_ident>()
            }
        };
    };
    let module_items = with_rest(&krate, &cfgs, struct_item, rest);
    quote! {
        #item

        #module_items
    }
}

/// The filter and operation methods of `jobsmith::Query` that the generated query type forwards
/// (each by `__query_method!`, which has one arm per name), unless an arg takes the name.
const QUERY_METHODS: &[&str] = &[
    "id",
    "ids",
    "states",
    "queue",
    "tag",
    "meta",
    "meta_key",
    "scheduled_from",
    "scheduled_before",
    "schema",
    "count",
    "list",
    "cancel",
    "retry",
    "delete",
    "update",
];

/// The typed query of the job: `<Job>Query`, a module-level item beside the job struct, and (for
/// the unnamed const) `<Job>::query()`, one method per arg taking a value of the arg's type, and
/// the forwarded methods of `jobsmith::Query`.
fn query_type(job: &JobFn, krate: &TokenStream, private: &TokenStream) -> (TokenStream, TokenStream) {
    let vis = &job.item.vis;
    let fn_name = job.ident().unraw().to_string();
    let struct_ident = job.struct_ident();
    let query_ident = format_ident!("{}Query", struct_ident);
    let doc = format!(
        " The jobs of `{fn_name}` that a query matches: made by [`{struct_ident}::query`], narrowed by \
         the job's args and by queue, state, tags, meta and schedule, then counted, listed, \
         cancelled, retried, deleted or updated through any executor. Generated by `#[job]`."
    );
    let args = job.args();
    let query_item = quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #query_ident(#private::Query<#struct_ident>);
    };
    let serde = quote!(#private::serde);
    let field_methods = args.iter().map(|arg| {
        let (ident, ty) = (arg.ident, arg.ty);
        let name = ident.unraw().to_string();
        let doc = format!(" Jobs whose arg `{name}` equals `value`.");
        // The value is encoded by the same call, spanned the same way, as in `serialize_impl`,
        // so an arg type without `Serialize` reports one error (rustc merges identical ones).
        let span = ty.span();
        // Spanned at the type with the user's hygiene, like `&self.#field` there: a name that
        // only this method's body uses, which holds no user code.
        let value = Ident::new("value", span);
        let state = Ident::new("state", Span::mixed_site().located_at(span));
        let encode = quote_spanned! {span=>
            let _ = #state.serialize_field(#name, &#value);
        };
        // The arg's own type, so a literal takes it (`7` for a `u32`) and no other type gets in
        // by a conversion (`true` for an `i64`); a `String` takes anything `Into<String>`.
        let (param, convert) = if is_string(ty) {
            (
                quote!(impl ::core::convert::Into<#ty>),
                quote!(let #value: #ty = ::core::convert::Into::into(#value);),
            )
        } else {
            (quote!(#ty), TokenStream::new())
        };
        quote! {
            #[doc = #doc]
            #vis fn #ident(self, #value: #param) -> Self {
                use #serde::ser::SerializeStruct as _;
                #convert
                let mut #state = #private::ArgCapture::default();
                #encode
                #query_ident(self.0.arg_captured(#state))
            }
        }
    });
    let forwarded = QUERY_METHODS
        .iter()
        .filter(|method| !args.iter().any(|arg| arg.ident.unraw() == method))
        .map(|method| {
            let method = Ident::new(method, Span::call_site());
            quote!(#krate::__private::__query_method!(#query_ident, #struct_ident, #method);)
        });
    let query_doc = format!(" Every job of `{fn_name}`, to narrow down: see [`{query_ident}`].");
    // An arg named `into_query` takes the name; `Query::from` still converts.
    let into_query = (!args.iter().any(|arg| arg.ident.unraw() == "into_query")).then(|| {
        quote! {
            /// The untyped-field form, with every filter and operation (also those an arg's name
            /// hides here).
            #vis fn into_query(self) -> #private::Query<#struct_ident> {
                self.0
            }
        }
    });
    let impls = quote! {
        impl #struct_ident {
            #[doc = #query_doc]
            #vis fn query() -> #query_ident {
                #query_ident(#private::Query::new())
            }
        }

        impl #query_ident {
            #(#field_methods)*

            #into_query
        }

        impl ::core::convert::From<#query_ident> for #private::Query<#struct_ident> {
            fn from(query: #query_ident) -> Self {
                query.0
            }
        }

        #(#forwarded)*
    };
    (query_item, impls)
}

/// The fn's doc comments, then a line that says where the struct comes from.
fn struct_docs(job: &JobFn) -> Vec<TokenStream> {
    let mut docs: Vec<TokenStream> = job
        .item
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .map(ToTokens::to_token_stream)
        .collect();
    if !docs.is_empty() {
        docs.push(quote!(#[doc = ""]));
    }
    let line = format!(
        " The job of `{}`, generated by `#[job]`: its fields are the fn's args.",
        job.ident().unraw()
    );
    docs.push(quote!(#[doc = #line]));
    docs
}

/// `JobOptions { given fields.., ..JobOptions::DEFAULT }`, or `JobOptions::DEFAULT` if no key
/// sets an option.
fn job_options(options: &Options, private: &TokenStream) -> TokenStream {
    let mut fields = Vec::new();
    if let Some(queue) = &options.queue {
        fields.push(quote!(queue: #queue));
    }
    if let Some((n, span)) = options.max_attempts {
        let n = spanned_literal(Literal::u32_unsuffixed(n), span);
        fields.push(quote!(max_attempts: #n));
    }
    if let Some((n, span)) = options.priority {
        let n = spanned_literal(Literal::u8_unsuffixed(n), span);
        fields.push(quote!(priority: #n));
    }
    if let Some((n, span)) = options.weight {
        let n = spanned_literal(Literal::u16_unsuffixed(n), span);
        fields.push(quote!(weight: #n));
    }
    if let Some(partition) = &options.partition {
        fields.push(quote!(partition_by: ::core::option::Option::Some(#partition)));
    }
    if let Some(timeout) = options.timeout {
        let timeout = millis(timeout, private);
        fields.push(quote!(timeout: ::core::option::Option::Some(#timeout)));
    }
    if let Some(tags) = &options.tags {
        fields.push(quote!(tags: &[#(#tags),*]));
    }
    if let Some(unique) = &options.unique {
        let unique = unique_options(unique, private);
        fields.push(quote!(unique: ::core::option::Option::Some(#unique)));
    }
    if let Some(cron) = &options.cron {
        let timezone = options.timezone.as_ref().map_or_else(|| quote!("UTC"), ToTokens::to_token_stream);
        fields.push(quote!(cron: ::core::option::Option::Some(#private::CronSpec { expr: #cron, timezone: #timezone })));
    }
    if fields.is_empty() {
        quote!(#private::JobOptions::DEFAULT)
    } else {
        quote!(#private::JobOptions { #(#fields,)* ..#private::JobOptions::DEFAULT })
    }
}

fn unique_options(unique: &Unique, private: &TokenStream) -> TokenStream {
    let mut fields = Vec::new();
    if let Some(period) = unique.period {
        let period = millis(period, private);
        fields.push(quote!(period: ::core::option::Option::Some(#period)));
    }
    if let Some(by) = unique.by {
        let (worker, queue, args) = (by.worker, by.queue, by.args);
        fields.push(quote!(by_worker: #worker, by_queue: #queue, by_args: #args));
    }
    if let Some(keys) = &unique.keys {
        fields.push(quote!(keys: &[#(#keys),*]));
    }
    if let Some(states) = &unique.states {
        let states = states.iter().map(|state| {
            let variant = format_ident!("{}", state.variant());
            quote!(#private::JobState::#variant)
        });
        fields.push(quote!(states: &[#(#states),*]));
    }
    if let Some(policy) = unique.on_conflict {
        let variant = format_ident!("{}", policy.variant());
        fields.push(quote!(on_conflict: #private::OnConflict::#variant));
    }
    if fields.is_empty() {
        quote!(#private::UniqueOptions::DEFAULT)
    } else {
        quote!(#private::UniqueOptions { #(#fields,)* ..#private::UniqueOptions::DEFAULT })
    }
}

fn millis((millis, span): (u64, Span), private: &TokenStream) -> TokenStream {
    let millis = spanned_literal(Literal::u64_unsuffixed(millis), span);
    quote!(#private::Duration::from_millis(#millis))
}

fn spanned_literal(mut literal: Literal, span: Span) -> Literal {
    literal.set_span(span);
    literal
}

/// `perform`: take each state the fn asks for from the context, call the fn with its params in
/// their order (the context, the states, the fields), and convert its result with `IntoOutcome`.
fn perform(job: &JobFn, returns: &Returns<'_>, private: &TokenStream) -> TokenStream {
    let fn_ident = job.ident();
    // Mixed-site names cannot collide with the user's fn or arg names (a fn named `ctx`).
    let ctx = Ident::new("ctx", Span::mixed_site());
    let output = Ident::new("output", Span::mixed_site());
    let tx = Ident::new("tx", Span::mixed_site());
    let mut states = Vec::new();
    let mut call = Vec::new();
    let takes_tx = job.params.iter().any(|param| matches!(param, Param::Tx(_)));
    for (index, param) in job.params.iter().enumerate() {
        match param {
            Param::Context(_) => call.push(quote!(#ctx)),
            Param::Tx(_) => call.push(quote!(&mut #tx)),
            Param::State(_, inner) => {
                let value = Ident::new(&format!("state{index}"), Span::mixed_site());
                // Spanned at the type: a type that cannot be state gets the bound's message there.
                states.push(quote_spanned! {inner.span()=>
                    let #value = match #private::state_of::<#inner>(&#ctx) {
                        ::core::option::Option::Some(value) => value,
                        ::core::option::Option::None => {
                            return ::core::result::Result::Err(#private::missing_at_run(
                                ::core::any::type_name::<#inner>(),
                            ));
                        }
                    };
                });
                call.push(quote!(#private::State(#value)));
            }
            Param::Arg(typed) => {
                if let syn::Pat::Ident(pat) = &*typed.pat {
                    let field = &pat.ident;
                    call.push(quote!(self.#field));
                }
            }
            Param::Receiver(_) => {}
        }
    }
    let ReturnType::Type(_, return_type) = &job.item.sig.output else {
        unreachable!("`signature` reports a missing return type")
    };
    // The conversion is spanned at the return type, so a fn returning `i32` gets
    // `IntoOutcome`'s message with the caret on `i32`.
    let into_outcome = match returns {
        // `Result<T, E>` with a value: completes with `T` recorded.
        Returns::Value(_) => quote_spanned! {return_type.span()=>
            #private::IntoOutcome::into_outcome(#output.map(#private::Outcome::CompleteWith))
        },
        _ => quote_spanned! {return_type.span()=>
            <#return_type as #private::IntoOutcome>::into_outcome(#output)
        },
    };
    // A job that takes its transaction: begun before the call (the context is only borrowed
    // for it), and after the call the completion is written and committed in it, or it is
    // rolled back (see `JobTx::finish`).
    let body = if takes_tx {
        quote! {
            let mut #tx = #private::JobTx::begin(&#ctx).await?;
            let #output = #fn_ident(#(#call),*).await;
            #private::JobTx::finish(#tx, #into_outcome).await
        }
    } else {
        quote! {
            let #output = #fn_ident(#(#call),*).await;
            #into_outcome
        }
    };
    quote! {
        // Calling a `#[deprecated]` job fn is the job's own business, not a warning at `#[job]`.
        #[allow(deprecated)]
        fn perform(self, #ctx: #private::JobContext) -> #private::PerformFuture {
            #private::Box::pin(async move {
                #(#states)*
                #body
            })
        }
    }
}

/// What the fn's `Ok` holds, which decides the job's `Output`: `()`, an `Outcome` (of `T`), or
/// a value `T` to record. Read from the return type's spelling: a path ending in `Result` whose
/// first type argument is the `Ok` type (`Result<T, E>`, `anyhow::Result<T>`). Anything else is
/// left to `IntoOutcome`, whose message explains what a job fn may return.
enum Returns<'a> {
    Unit,
    Outcome(Option<&'a Type>),
    Value(&'a Type),
    Unknown,
}

impl<'a> Returns<'a> {
    fn of(job: &'a JobFn) -> Self {
        let ReturnType::Type(_, ty) = &job.item.sig.output else { return Returns::Unknown };
        let Some(ok) = result_ok_type(ty) else { return Returns::Unknown };
        match ok {
            Type::Tuple(tuple) if tuple.elems.is_empty() => Returns::Unit,
            Type::Path(path)
                if path.qself.is_none()
                    && path.path.segments.last().is_some_and(|s| s.ident == "Outcome") =>
            {
                let last = path.path.segments.last().expect("checked");
                match &last.arguments {
                    syn::PathArguments::AngleBracketed(args) => match args.args.first() {
                        Some(syn::GenericArgument::Type(inner)) => Returns::Outcome(Some(inner)),
                        _ => Returns::Outcome(None),
                    },
                    _ => Returns::Outcome(None),
                }
            }
            other => Returns::Value(other),
        }
    }

    /// `Job::Output`.
    fn output_type(&self) -> TokenStream {
        match self {
            Returns::Outcome(Some(inner)) | Returns::Value(inner) => quote!(#inner),
            Returns::Unit | Returns::Outcome(None) | Returns::Unknown => quote!(()),
        }
    }
}

/// The `Ok` type of a return type spelled as a `Result`.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident != "Result" {
                return None;
            }
            match &last.arguments {
                syn::PathArguments::AngleBracketed(args) => match args.args.first() {
                    Some(syn::GenericArgument::Type(ok)) => Some(ok),
                    _ => None,
                },
                _ => None,
            }
        }
        Type::Group(group) => result_ok_type(&group.elem),
        Type::Paren(paren) => result_ok_type(&paren.elem),
        _ => None,
    }
}

/// `const STATES`: the state types the fn takes, for the runtime to check at start; nothing for a
/// fn without state (the trait's default, none).
fn states_const(job: &JobFn, private: &TokenStream) -> TokenStream {
    let inners: Vec<&Type> = job
        .params
        .iter()
        .filter_map(|param| match param {
            Param::State(_, inner) => Some(inner),
            _ => None,
        })
        .collect();
    if inners.is_empty() {
        return TokenStream::new();
    }
    quote! {
        const STATES: &'static [#private::StateNeed] = &[#(#private::StateNeed::of::<#inners>()),*];
    }
}

// How the job struct gets its serde impls, and why not `#[derive(Serialize, Deserialize)]` alone.
//
// With plain derives, one arg type that lacks serde's traits gives six errors: the derived bodies
// need the trait in four places (two of them reported at `#[job]`, not at the type), plus the
// `Serialize + DeserializeOwned` assertion this macro would add to point at the type. rustc does
// not merge errors across fns, so the only way to fewer errors is fewer places that need the
// trait, each spanned at the arg's type:
//
// - `Serialize` is written here (`serialize_impl`): the same `serialize_struct` calls the derive
//   makes, each spanned at its field's type, so a type without `Serialize` gives one error there.
// - `Deserialize` stays derived, with `deserialize_with = "Deserialize::deserialize"` on every
//   field, spanned at the field's type. That decodes exactly as the derive would, but serde then
//   needs the trait in one wrapper per field instead of in `visit_seq`, `visit_map` and the
//   missing-field path: one error, at the type.
//
// So a type that is neither `Serialize` nor `Deserialize` gives two errors, both at the type and
// each with serde's note on which derive to add; no separate assertion is needed. The one thing
// `deserialize_with` changes is that a missing field is an error even for an `Option`, so
// `Option` fields get `#[serde(default)]`, which restores "absent means `None`" (useful when a
// param is added to a job whose older rows lack it).

/// `#[serde(...)]` for one field: see the comment above.
fn field_serde_attrs(ty: &Type, private: &TokenStream) -> TokenStream {
    let deserialize = LitStr::new(&quote!(#private::serde::Deserialize::deserialize).to_string(), ty.span());
    let default = is_option(ty).then(|| quote!(default,));
    quote!(#[serde(#default deserialize_with = #deserialize)])
}

/// Whether `ty` is spelled `String` (or `std::string::String`).
fn is_string(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none()
                && path.path.segments.last().is_some_and(|s| s.ident == "String" && s.arguments.is_empty())
        }
        Type::Group(group) => is_string(&group.elem),
        _ => false,
    }
}

/// Whether `ty` is spelled as an `Option` (serde's own "missing means `None`" is also decided by
/// the type, but at run time; this is the compile-time equivalent for the common spelling).
fn is_option(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == "Option")
        }
        Type::Group(group) => is_option(&group.elem),
        _ => false,
    }
}

/// `impl Serialize` for the job struct, as `#[derive(Serialize)]` writes it, with each field's
/// call spanned at the field's type.
fn serialize_impl(job: &JobFn, private: &TokenStream) -> TokenStream {
    let struct_ident = job.struct_ident();
    let struct_name = struct_ident.to_string();
    let serde = quote!(#private::serde);
    let args = job.args();
    let len = args.len();
    let state = Ident::new("state", Span::mixed_site());
    let fields = args.iter().map(|arg| {
        // Every token of the call, including the field name and `state`, is spanned at the type:
        // an error's caret then covers the type alone, not the param name or `#[job]`.
        let span = arg.ty.span();
        let mut field = arg.ident.clone();
        field.set_span(span);
        let state = Ident::new("state", Span::mixed_site().located_at(span));
        let name = arg.ident.unraw().to_string();
        quote_spanned! {span=>
            #state.serialize_field(#name, &self.#field)?;
        }
    });
    quote! {
        impl #serde::Serialize for #struct_ident {
            fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
            where
                S: #serde::Serializer,
            {
                use #serde::ser::SerializeStruct as _;
                #[allow(unused_mut)]
                let mut #state = #serde::Serializer::serialize_struct(serializer, #struct_name, #len)?;
                #(#fields)*
                #serde::ser::SerializeStruct::end(#state)
            }
        }
    }
}
