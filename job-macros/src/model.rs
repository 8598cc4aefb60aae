//! The job fn as the macro sees it: its item, unchanged, and its parameters sorted into the
//! receiver, the context and the args.

use proc_macro2::Ident;
use syn::ext::IdentExt;
use syn::{FnArg, ItemFn, Pat, PatType, Type};

/// A parsed `#[job]` fn. Building it never fails; `signature` reports what is wrong with it.
pub(crate) struct JobFn {
    /// The fn as the user wrote it; it is emitted unchanged.
    pub(crate) item: ItemFn,
    /// Its parameters, in order.
    pub(crate) params: Vec<Param>,
}

/// One parameter of the fn.
pub(crate) enum Param {
    /// `self`, `&self`, ...: always an error.
    Receiver(syn::Receiver),
    /// A parameter of type `JobContext` (by its last path segment, so `jobsmith::JobContext`, a
    /// `use`d `JobContext` and `__private::JobContext` all count).
    Context(PatType),
    /// A parameter of type `State<T>` (by its last path segment, with one type argument): the
    /// runtime passes a clone of its state of type `T` (the inner type, kept here).
    State(PatType, Type),
    /// A parameter whose type names `JobTx` (by its last path segment): the job's own
    /// transaction. Only `&mut JobTx` is valid; `signature` reports the other forms.
    Tx(PatType),
    /// Anything else: it becomes a field of the job struct.
    Arg(PatType),
}

/// An arg that passed validation: a plain name and an owned type.
pub(crate) struct Arg<'a> {
    /// The parameter's name, which is also the field's name.
    pub(crate) ident: &'a Ident,
    /// The parameter's type, which is also the field's type.
    pub(crate) ty: &'a Type,
}

impl JobFn {
    pub(crate) fn new(item: ItemFn) -> Self {
        let params = item
            .sig
            .inputs
            .iter()
            .map(|input| match input {
                FnArg::Receiver(receiver) => Param::Receiver(receiver.clone()),
                FnArg::Typed(typed) if is_context(&typed.ty) => Param::Context(typed.clone()),
                FnArg::Typed(typed) if tx_form(&typed.ty).is_some() => Param::Tx(typed.clone()),
                FnArg::Typed(typed) => match state_inner(&typed.ty) {
                    Some(inner) => Param::State(typed.clone(), inner.clone()),
                    None => Param::Arg(typed.clone()),
                },
            })
            .collect();
        JobFn { item, params }
    }

    /// The fn's name.
    pub(crate) fn ident(&self) -> &Ident {
        &self.item.sig.ident
    }

    /// The job struct's name: the fn's name in PascalCase, spanned at the fn's name so "defined
    /// here" notes point at it.
    pub(crate) fn struct_ident(&self) -> Ident {
        let name = heck::ToUpperCamelCase::to_upper_camel_case(self.ident().unraw().to_string().as_str());
        Ident::new(&name, self.ident().span())
    }

    /// The args with a plain-name pattern. After validation, these are all the args.
    pub(crate) fn args(&self) -> Vec<Arg<'_>> {
        self.params
            .iter()
            .filter_map(|param| match param {
                Param::Arg(typed) => match &*typed.pat {
                    Pat::Ident(pat) => Some(Arg { ident: &pat.ident, ty: &typed.ty }),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }
}

/// The `T` of a `State<T>`: a path whose last segment is `State` with exactly one type argument
/// (so `jobsmith::State<App>` and a `use`d `State<App>` count; a type of one's own named `State`
/// without arguments stays an arg).
pub(crate) fn state_inner(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident != "State" {
                return None;
            }
            match &last.arguments {
                syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
                    syn::GenericArgument::Type(inner) => Some(inner),
                    _ => None,
                },
                _ => None,
            }
        }
        Type::Group(group) => state_inner(&group.elem),
        Type::Paren(paren) => state_inner(&paren.elem),
        _ => None,
    }
}

/// Whether `ty` names the job context: a path whose last segment is `JobContext`.
pub(crate) fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == "JobContext")
        }
        Type::Group(group) => is_context(&group.elem),
        Type::Paren(paren) => is_context(&paren.elem),
        _ => false,
    }
}

/// How a parameter takes the job's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxForm {
    /// `&mut JobTx`: the one valid form.
    MutRef,
    /// `&JobTx`.
    SharedRef,
    /// `JobTx`, by value.
    Owned,
}

/// Whether `ty` is the job's transaction (a path whose last segment is `JobTx`), and in which
/// form.
pub(crate) fn tx_form(ty: &Type) -> Option<TxForm> {
    match ty {
        Type::Reference(reference) if names_job_tx(&reference.elem) => {
            Some(if reference.mutability.is_some() { TxForm::MutRef } else { TxForm::SharedRef })
        }
        ty if names_job_tx(ty) => Some(TxForm::Owned),
        Type::Group(group) => tx_form(&group.elem),
        Type::Paren(paren) => tx_form(&paren.elem),
        _ => None,
    }
}

fn names_job_tx(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == "JobTx")
        }
        Type::Group(group) => names_job_tx(&group.elem),
        Type::Paren(paren) => names_job_tx(&paren.elem),
        _ => false,
    }
}
