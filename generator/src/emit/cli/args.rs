//! The arguments of one command: path parameters as positional
//! arguments, the other parameters as flags (enums as their values,
//! defaults as clap defaults), and a JSON body's top-level fields as flags
//! beside `--body` for the whole of it.

use super::plan::{Command, kebab};
use crate::emit::client::{Plan, is_argument, managed_header};
use crate::ir::{Api, BodyContent, Encoding, Field, ParamLocation, Parameter, Shape, TypeKind};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Flags every command may have; a parameter or field never takes them.
pub const TAKEN_FLAGS: &[&str] =
    &["api-key", "base-url", "profile", "config", "output", "help", "version", "all", "wait", "stream", "body", "file"];

/// How a command gets its request body.
pub enum BodyPlan<'a> {
    /// No body.
    None,
    /// JSON (or a form, given as JSON), from `--body` and from flags for
    /// the fields of `fields`.
    Json { content: &'a BodyContent, fields: Vec<FieldArg<'a>> },
    /// Text or bytes, from `--body`.
    Raw(&'a BodyContent),
    /// A media type the command line cannot build (a multipart body, whose
    /// files have no JSON form): the command says so when run.
    Unsupported(&'a str),
}

/// A body field given as a flag or a positional argument.
pub struct FieldArg<'a> {
    /// The field.
    pub field: &'a Field,
    /// The clap field's identifier.
    pub ident: proc_macro2::Ident,
    /// The flag (`None`: positional, or from `--file`).
    pub flag: Option<String>,
    /// Read from `--file` as JSON Lines.
    pub from_file: bool,
}

/// A parameter given as a flag or a positional argument.
pub struct ParamArg<'a> {
    /// The parameter.
    pub param: &'a Parameter,
    /// The clap field's identifier.
    pub ident: proc_macro2::Ident,
    /// The flag (`None`: positional).
    pub flag: Option<String>,
    /// An argument of the client's method (not a builder setter).
    pub method_arg: bool,
}

/// Everything a command takes.
pub struct Args<'a> {
    /// The parameters.
    pub params: Vec<ParamArg<'a>>,
    /// The body.
    pub body: BodyPlan<'a>,
}

fn unique_flag(name: String, prefix: &str, taken: &mut Vec<String>) -> String {
    let mut flag = name.clone();
    if taken.contains(&flag) {
        flag = format!("{prefix}-{name}");
    }
    let mut n = 2;
    let base = flag.clone();
    while taken.contains(&flag) {
        flag = format!("{base}-{n}");
        n += 1;
    }
    taken.push(flag.clone());
    flag
}

/// The struct fields of a JSON body, when its shape is a named object.
fn struct_fields<'a>(api: &'a Api, shape: &Shape) -> Option<&'a [Field]> {
    let Shape::Named(name) = shape else { return None };
    match api.types.get(name).map(|t| &t.kind) {
        Some(TypeKind::Struct(s)) => Some(&s.fields),
        _ => None,
    }
}

/// Plans the arguments of a command.
pub fn args<'a>(plan: &Plan, api: &'a Api, command: &Command<'a>) -> Args<'a> {
    let op = command.op;
    let mut taken: Vec<String> = TAKEN_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    let params = op
        .parameters
        .iter()
        .map(|p| {
            let method_arg = is_argument(plan, p);
            let flag = (p.location != ParamLocation::Path)
                .then(|| unique_flag(kebab(&p.api_name), p.location.as_str(), &mut taken));
            ParamArg { param: p, ident: format_ident!("p_{}", p.name.trim_start_matches('_')), flag, method_arg }
        })
        .collect();
    let body = match &op.body {
        None => BodyPlan::None,
        Some(body) => {
            // A form's fields are typed like a JSON object's, so a form body
            // is given as JSON too and the client sends it as a form.
            let json = body
                .contents
                .iter()
                .find(|c| c.encoding == Encoding::Json)
                .or_else(|| body.contents.iter().find(|c| c.encoding == Encoding::Form));
            let raw = body.contents.iter().find(|c| matches!(c.encoding, Encoding::Text | Encoding::Binary));
            match (json, raw) {
                (Some(content), _) => {
                    let fields = struct_fields(api, &content.shape)
                        .unwrap_or_default()
                        .iter()
                        .map(|f| {
                            let positional = command.positional.contains(&f.api_name);
                            let from_file = command.file_field.as_deref() == Some(f.api_name.as_str())
                                && matches!(f.shape, Shape::Array(_));
                            let flag = (!positional && !from_file)
                                .then(|| unique_flag(kebab(&f.api_name), "body", &mut taken));
                            FieldArg {
                                field: f,
                                ident: format_ident!("f_{}", f.name.trim_start_matches('_')),
                                flag,
                                from_file,
                            }
                        })
                        .collect();
                    BodyPlan::Json { content, fields }
                }
                (None, Some(content)) => BodyPlan::Raw(content),
                (None, None) => BodyPlan::Unsupported(body.primary().media_type.as_str()),
            }
        }
    };
    Args { params, body }
}

/// The enum values a shape allows, looking through lists.
fn enum_values(api: &Api, shape: &Shape) -> Option<Vec<String>> {
    match shape {
        Shape::Named(n) => match api.types.get(n).map(|t| &t.kind) {
            Some(TypeKind::Enum(e)) => Some(e.variants.iter().map(|v| v.api_name.clone()).collect()),
            Some(TypeKind::Alias(inner)) => enum_values(api, inner),
            _ => None,
        },
        Shape::Boolean => Some(vec!["true".into(), "false".into()]),
        Shape::Array(a) => enum_values(api, &a.items),
        _ => None,
    }
}

/// Whether a value of this shape is written as a JSON string (text and
/// enums), so a flag's text is taken as it is.
pub fn is_text(api: &Api, shape: &Shape) -> bool {
    match shape {
        Shape::String(_) | Shape::Binary => true,
        Shape::Named(n) => match api.types.get(n).map(|t| &t.kind) {
            Some(TypeKind::Enum(_)) => true,
            Some(TypeKind::Alias(inner)) => is_text(api, inner),
            _ => false,
        },
        _ => false,
    }
}

/// A help line from a description: its first paragraph on one line.
pub fn help_text(text: Option<&str>) -> Option<String> {
    let text = text?.trim();
    let first = text.split("\n\n").next().unwrap_or(text);
    let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then_some(line)
}

fn default_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn value_name(name: &str) -> String {
    kebab(name).replace('-', "_").to_uppercase()
}

/// The clap fields of a command's `Args` struct. clap's derive tells
/// optional and repeated arguments by the bare names `Option` and `Vec`, so
/// these two (in the prelude, and never shadowed in the generated module)
/// are not written as full paths there.
pub fn fields(api: &Api, plan: &Plan, command: &Command, args: &Args) -> Vec<TokenStream> {
    let mut out = Vec::new();
    for a in &args.params {
        let p = a.param;
        let id = &a.ident;
        let mut help = help_text(p.description.as_deref()).unwrap_or_else(|| format!("`{}`", p.api_name));
        if p.location == ParamLocation::Header {
            help.push_str(&format!(" (header `{}`)", p.api_name));
        }
        let help = help.replace('`', "");
        let list = matches!(p.shape, Shape::Array(_));
        let values = enum_values(api, &p.shape).map(|v| quote!(value_parser = [#(#v),*],)).unwrap_or_default();
        let vname = value_name(&p.api_name);
        let default = (!p.required)
            .then(|| p.default.as_ref().and_then(default_text))
            .flatten()
            .filter(|_| !list && managed_header(plan, p).is_none())
            .map(|d| quote!(default_value = #d,))
            .unwrap_or_default();
        let hide = if p.deprecated { quote!(hide = true,) } else { TokenStream::new() };
        let field = match (&a.flag, list, p.required && a.method_arg) {
            (None, _, _) => quote!(#[arg(value_name = #vname, help = #help, #values)] pub #id: ::std::string::String,),
            (Some(flag), true, required) => {
                quote!(#[arg(long = #flag, value_name = #vname, help = #help, required = #required, #values #hide)] pub #id: Vec<::std::string::String>,)
            }
            (Some(flag), false, true) => {
                quote!(#[arg(long = #flag, value_name = #vname, help = #help, #values)] pub #id: ::std::string::String,)
            }
            (Some(flag), false, false) => {
                quote!(#[arg(long = #flag, value_name = #vname, help = #help, #values #default #hide)] pub #id: Option<::std::string::String>,)
            }
        };
        out.push(field);
    }
    match &args.body {
        BodyPlan::Json { fields, .. } => {
            let mut positional = Vec::new();
            for f in fields {
                let id = &f.ident;
                let help = help_text(f.field.description.as_deref())
                    .unwrap_or_else(|| format!("The body's `{}`.", f.field.api_name))
                    .replace('`', "");
                let vname = value_name(&f.field.api_name);
                let list = matches!(f.field.shape, Shape::Array(_));
                let values =
                    enum_values(api, &f.field.shape).map(|v| quote!(value_parser = [#(#v),*],)).unwrap_or_default();
                if f.from_file {
                    let help = format!(
                        "A JSON Lines file (or - for standard input) of the body's `{}`, one item a line.",
                        f.field.api_name
                    )
                    .replace('`', "");
                    out.push(quote!(#[arg(long = "file", value_name = "FILE", help = #help)] pub #id: Option<::std::string::String>,));
                    continue;
                }
                match &f.flag {
                    None => positional.push((f.field.api_name.as_str(), quote!(#[arg(value_name = #vname, help = #help, #values)] pub #id: Option<::std::string::String>,))),
                    Some(flag) if list => out.push(quote!(#[arg(long = #flag, value_name = #vname, help = #help, #values)] pub #id: Vec<::std::string::String>,)),
                    Some(flag) => out.push(quote!(#[arg(long = #flag, value_name = #vname, help = #help, #values)] pub #id: Option<::std::string::String>,)),
                }
            }
            // Positional fields in the order the hint lists them.
            positional.sort_by_key(|(name, _)| command.positional.iter().position(|p| p == name));
            out.extend(positional.into_iter().map(|(_, t)| t));
            out.push(quote!(
                #[arg(long = "body", value_name = "JSON", help = "The whole request body: JSON, @FILE, or - for standard input. Flags for its fields are set on it.")]
                pub body: Option<::std::string::String>,
            ));
        }
        BodyPlan::Raw(content) => {
            let help = format!("The request body ({}): text, @FILE, or - for standard input.", content.media_type);
            out.push(quote!(#[arg(long = "body", value_name = "BODY", help = #help)] pub body: Option<::std::string::String>,));
        }
        BodyPlan::None | BodyPlan::Unsupported(_) => {}
    }
    out
}
