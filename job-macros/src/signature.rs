//! Checks the fn's signature: `async`, no receiver, the context first and by value, plain-name
//! params of owned, sendable types, no generics, and a return type.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{
    GenericArgument, Pat, PathArguments, ReturnType, Type, TypeParamBound, TypeTraitObject, parse_quote,
};

use crate::ctxt::{Ctxt, source};
use crate::model::{JobFn, Param, TxForm, is_context, tx_form};

pub(crate) fn check(job: &JobFn, cx: &mut Ctxt) {
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
            Param::State(typed, inner) => {
                let twice = job.params[..index]
                    .iter()
                    .any(|earlier| matches!(earlier, Param::State(_, seen) if same_type(seen, inner)));
                if twice {
                    cx.error_spanned_by(
                        typed,
                        format!(
                            "the state `{}` is taken twice: take it once (each `State<T>` is a clone of \
                             the runtime's value) and use it in both places",
                            source(inner)
                        ),
                    );
                }
            }
            Param::Tx(typed) => {
                let twice = job.params[..index].iter().any(|earlier| matches!(earlier, Param::Tx(_)));
                let name = match &*typed.pat {
                    Pat::Ident(ident) => ident.ident.to_string(),
                    _ => "tx".to_owned(),
                };
                if twice {
                    cx.error_spanned_by(
                        typed,
                        "the job's transaction is taken twice: a job has one transaction; take it once as \
                         `&mut JobTx`",
                    );
                } else if tx_form(&typed.ty) != Some(TxForm::MutRef) {
                    cx.error_spanned_by(
                        &typed.ty,
                        format!(
                            "the job's transaction is lent to the job fn, which writes through it: \
                             write `{name}: &mut JobTx`"
                        ),
                    );
                }
            }
            Param::Arg(typed) => {
                let name_ok = arg_pattern(&typed.pat, &typed.ty, cx);
                let before = cx.len();
                borrows |= owned_type(&typed.ty, name_ok.then_some(&*typed.pat), cx);
                if cx.len() == before {
                    no_std_trait_object(&typed.ty, cx);
                }
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

/// Whether two state types are written the same (what the compiler would take for one type is
/// not known to a macro; the same spelling twice is the mistake worth catching).
fn same_type(a: &Type, b: &Type) -> bool {
    a.to_token_stream().to_string() == b.to_token_stream().to_string()
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

/// std traits with no `Send`, `Serialize` or `Deserialize` supertrait: a `dyn` object of one is
/// never a valid job arg. A trait of the user's crate may be (with `typetag` and a `Send`
/// supertrait), so only these are reported; the compiler reports the rest.
const STD_TRAITS: &[&str] =
    &["Error", "Any", "Debug", "Display", "Fn", "FnMut", "FnOnce", "Future", "Iterator", "Read", "Write"];

/// Reports an arg whose type holds a `dyn` object of a std trait, such as `Box<dyn Error>`: one
/// error at the arg's type instead of the compiler's several (`Send`, `Sync`, serde, `Clone`) at
/// the fn's name.
fn no_std_trait_object(ty: &Type, cx: &mut Ctxt) {
    let Some(object) = std_trait_object(ty) else { return };
    let send = if has_bound(object, "Send") { "" } else { " and is not `Send`" };
    cx.error_spanned_by(
        ty,
        format!(
            "a job arg cannot hold a trait object such as `{}`: args are serialized to JSON and read \
             back by the runtime, so each must be `Serialize + DeserializeOwned + Send`, and a `dyn` \
             object cannot be deserialized{send}; take a concrete type instead, such as the error's \
             message as a `String`",
            source(object)
        ),
    );
}

/// The first `dyn Trait` in `ty` whose first trait is one of `STD_TRAITS`.
fn std_trait_object(ty: &Type) -> Option<&TypeTraitObject> {
    match ty {
        Type::TraitObject(object) => {
            let std = object.bounds.iter().find_map(|bound| match bound {
                TypeParamBound::Trait(bound) => bound.path.segments.last(),
                _ => None,
            });
            std.is_some_and(|segment| STD_TRAITS.iter().any(|name| segment.ident == name)).then_some(object)
        }
        Type::Array(array) => std_trait_object(&array.elem),
        Type::Group(group) => std_trait_object(&group.elem),
        Type::Paren(paren) => std_trait_object(&paren.elem),
        Type::Slice(slice) => std_trait_object(&slice.elem),
        Type::Reference(reference) => std_trait_object(&reference.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(std_trait_object),
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.iter().find_map(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Type(ty) => std_trait_object(ty),
                    _ => None,
                }),
                _ => None,
            })
        }
        _ => None,
    }
}

/// Whether `object` lists the marker trait `name` (`dyn Error + Send`).
fn has_bound(object: &TypeTraitObject, name: &str) -> bool {
    object.bounds.iter().any(|bound| match bound {
        TypeParamBound::Trait(bound) => {
            bound.path.segments.last().is_some_and(|segment| segment.ident == name)
        }
        _ => false,
    })
}

/// Whether an arg of type `ty` can be a field of the stub struct generated beside errors: a type
/// that `owned_type` and `no_std_trait_object` accept (so the stub adds no error of its own).
pub(crate) fn fits_a_stub_field(ty: &Type) -> bool {
    unowned_part(ty).is_none() && std_trait_object(ty).is_none()
}
