//! What one command does: builds the request with the client's builder
//! from its arguments, sends it, and prints the answer (walking every page
//! with `--all`, waiting on an operation with `--wait`, printing a
//! stream's events as they arrive).

use super::args::{Args, BodyPlan, ParamArg, is_text};
use super::plan::Command;
use crate::emit::bodies::content_type;
use crate::emit::client::{Plan, Success, managed_header, status_variant};
use crate::emit::models::ident;
use crate::ir::{Api, Encoding, Operation, ResponseBody, Shape, StatusCode};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The value of a parameter's clap field, as the client's method or setter
/// takes it; `raw` is a `&String` or `&Vec<String>`.
fn param_value(plan: &Plan, a: &ParamArg, raw: TokenStream) -> TokenStream {
    let name = &a.param.api_name;
    if managed_header(plan, a.param).is_some() {
        return quote!(::std::clone::Clone::clone(#raw));
    }
    match &a.param.shape {
        Shape::String(_) => quote!(::std::clone::Clone::clone(#raw)),
        Shape::Array(_) => quote!(crate::input::values(#name, #raw)?),
        _ => quote!(crate::input::value(#name, #raw)?),
    }
}

/// The statements that set the body's fields given as flags: `fields`, a
/// list of (wire name, JSON value).
fn body_fields(api: &Api, args: &Args) -> TokenStream {
    let BodyPlan::Json { fields, .. } = &args.body else { return TokenStream::new() };
    let pushes = fields.iter().map(|f| {
        let id = &f.ident;
        let wire = &f.field.api_name;
        if f.from_file {
            return quote! {
                if let ::std::option::Option::Some(path) = &args.#id {
                    fields.push((#wire, crate::input::json_lines(path)?));
                }
            };
        }
        match (&f.field.shape, &f.flag) {
            (Shape::Array(a), Some(_)) => {
                let text = is_text(api, &a.items);
                quote! {
                    if !args.#id.is_empty() {
                        let items = args.#id.iter().map(|raw| crate::input::field(raw, #text)).collect();
                        fields.push((#wire, ::serde_json::Value::Array(items)));
                    }
                }
            }
            (shape, _) => {
                let text = is_text(api, shape);
                quote! {
                    if let ::std::option::Option::Some(raw) = &args.#id {
                        fields.push((#wire, crate::input::field(raw, #text)));
                    }
                }
            }
        }
    });
    quote! {
        #[allow(unused_mut)]
        let mut fields: ::std::vec::Vec<(&str, ::serde_json::Value)> = ::std::vec::Vec::new();
        #(#pushes)*
    }
}

/// The body as the client's method or `body` setter takes it, from the
/// local `body_json` (JSON) or `args.body` (text and bytes).
fn body_value(op: &Operation, args: &Args, lib: &TokenStream) -> Option<TokenStream> {
    let body = op.body.as_ref()?;
    let (content, value) = match &args.body {
        BodyPlan::Json { content, .. } => (*content, quote!(crate::input::convert(&body_json)?)),
        BodyPlan::Raw(content) if content.encoding == Encoding::Text => {
            (*content, quote!(crate::input::text_body(args.body.as_deref())?))
        }
        BodyPlan::Raw(content) => (*content, quote!(crate::input::raw_body(args.body.as_deref())?)),
        BodyPlan::None | BodyPlan::Unsupported(_) => return None,
    };
    Some(match &body.choice {
        Some(choice) => {
            let choice = format_ident!("{}", choice);
            let variant = format_ident!("{}", content.variant);
            let value = match content.encoding {
                Encoding::Binary => quote!(::std::convert::Into::into(#value)),
                _ => value,
            };
            quote!(#lib operations::#choice::#variant(#value))
        }
        None if matches!(content.encoding, Encoding::Json | Encoding::Form) => {
            let ty = content_type(content, &quote!(#lib types::));
            quote!(crate::input::convert::<#ty>(&body_json)?)
        }
        None => value,
    })
}

/// The request for `op` (the command's own operation or the stream it
/// folds in) in the local `request`, with the arguments of `args` whose
/// names it shares.
fn build_request(plan: &Plan, op: &Operation, args: &Args, lib: &TokenStream) -> TokenStream {
    let method = ident(&op.name);
    let mut method_args = Vec::new();
    let mut setters = Vec::new();
    for p in &op.parameters {
        let Some(a) = args.params.iter().find(|a| a.param.name == p.name) else { continue };
        let id = &a.ident;
        let is_method_arg = crate::emit::client::is_argument(plan, p);
        let setter = ident(&p.name);
        let list = matches!(p.shape, Shape::Array(_));
        let has_value = a.flag.is_none() || (a.param.required && a.method_arg);
        if is_method_arg {
            let value = if has_value { param_value(plan, a, quote!(&args.#id)) } else { continue };
            method_args.push(value);
        } else if list {
            let value = param_value(plan, a, quote!(&args.#id));
            setters.push(quote!(if !args.#id.is_empty() { request = request.#setter(#value); }));
        } else if has_value {
            let value = param_value(plan, a, quote!(&args.#id));
            setters.push(quote!(request = request.#setter(#value);));
        } else {
            let value = param_value(plan, a, quote!(raw));
            setters.push(
                quote!(if let ::std::option::Option::Some(raw) = &args.#id { request = request.#setter(#value); }),
            );
        }
    }
    let body = body_value(op, args, lib);
    let required = op.body.as_ref().is_some_and(|b| b.required);
    match (body, required) {
        (Some(value), true) => method_args.push(value),
        (Some(value), false) => setters.push(quote!(if body_given { request = request.body(#value); })),
        (None, _) => {}
    }
    quote! {
        #[allow(unused_mut)]
        let mut request = client.#method(#(#method_args),*);
        #(#setters)*
    }
}

/// Prints a long-running operation's handle, or waits for it with `--wait`.
fn handle_output(value: TokenStream) -> TokenStream {
    quote! {
        let handle = #value;
        if args.wait {
            let label = ::std::format!("waiting for operation {}", handle.id());
            let operation = crate::progress::while_waiting(&label, handle.wait()).await?;
            out.value(&crate::input::json(&operation));
        } else {
            out.value(&crate::input::json(handle.accepted()));
        }
    }
}

/// Sends `request` (a stream) and prints its events.
fn stream_output(op: &Operation, lib: &TokenStream) -> TokenStream {
    let Some(stream) = op.event_stream() else { return TokenStream::new() };
    let event_enum = format_ident!("{}Event", op.type_prefix);
    let arms = stream.events.iter().map(|e| {
        let v = ident(&e.name);
        let name = &e.api_name;
        let last = e.terminal;
        if e.any_name {
            quote!(#lib operations::#event_enum::#v { event, data } => (event.unwrap_or_else(|| ::std::string::String::from("message")), crate::input::json(&data), #last),)
        } else {
            quote!(#lib operations::#event_enum::#v(data) => (::std::string::String::from(#name), crate::input::json(&data), #last),)
        }
    });
    // Without an event for every name, the client keeps names it does not
    // know as `Unknown` (a newer server's events); print them as they came.
    let unknown = (!stream.events.iter().any(|e| e.any_name)).then(|| {
        quote! {
            #lib operations::#event_enum::Unknown { event, data } => {
                let data = match ::serde_json::from_str::<::serde_json::Value>(&data) {
                    ::std::result::Result::Ok(value) => value,
                    ::std::result::Result::Err(_) => ::serde_json::Value::String(data),
                };
                (event, data, false)
            }
        }
    });
    let arms = arms.chain(unknown);
    quote! {
        let mut events = ::std::pin::pin!(request.send()?);
        while let ::std::option::Option::Some(event) = ::futures::StreamExt::next(&mut events).await {
            let (name, data, last) = match event? {
                #(#arms)*
            };
            out.event(&name, &data, last);
        }
    }
}

/// Sends `request` and prints the answer.
fn response_output(plan: &Plan, op: &Operation, lib: &TokenStream) -> TokenStream {
    match plan.success_kind(op) {
        Success::Stream => stream_output(op, lib),
        Success::Single { handle: true, .. } => handle_output(quote!(request.send().await?.body)),
        Success::Single { shape: Some(_), .. } => match &op.pagination {
            Some(p) => {
                let items = ident(&p.items_field);
                quote! {
                    if args.all {
                        let mut items = ::std::pin::pin!(request.into_stream());
                        let mut kept = ::std::vec::Vec::new();
                        while let ::std::option::Option::Some(item) = ::futures::StreamExt::next(&mut items).await {
                            let item = crate::input::json(&item?);
                            if out.format() == crate::output::Format::Json { out.item(&item); } else { kept.push(item); }
                        }
                        if out.format() != crate::output::Format::Json { out.items(&kept); }
                    } else {
                        let page = request.send().await?.body;
                        let items: ::std::vec::Vec<::serde_json::Value> = page.#items.iter().map(crate::input::json).collect();
                        out.items(&items);
                    }
                }
            }
            None => quote!(out.value(&crate::input::json(&request.send().await?.body));),
        },
        Success::Single { shape: None, .. } => quote!(request.send().await?;),
        Success::Raw(ResponseBody::Text { .. }) => quote!(out.raw(request.send().await?.body.as_bytes());),
        Success::Raw(_) => quote!(out.raw(&request.send().await?.body);),
        Success::Several => {
            let enum_name = format_ident!("{}Response", op.type_prefix);
            let arms = op.successes().filter(|r| matches!(r.status, StatusCode::Code(_))).map(|r| {
                let v = format_ident!("{}", status_variant(r.status));
                let path = quote!(#lib operations::#enum_name::#v);
                match &r.body {
                    Some(ResponseBody::Json { shape, .. }) if is_handle(plan, r.status, shape) => {
                        let body = handle_output(quote!(handle));
                        quote!(#path(handle) => { #body })
                    }
                    Some(ResponseBody::Json { .. }) => quote!(#path(body) => out.value(&crate::input::json(&body)),),
                    Some(ResponseBody::Text { .. }) => quote!(#path(body) => out.raw(body.as_bytes()),),
                    Some(ResponseBody::Binary { .. }) => quote!(#path(body) => out.raw(&body),),
                    _ => quote!(#path => {}),
                }
            });
            quote! {
                match request.send().await?.body {
                    #(#arms)*
                }
            }
        }
    }
}

/// Whether a response becomes an operation handle in the client (as the
/// client's plan decides).
fn is_handle(plan: &Plan, status: StatusCode, shape: &Shape) -> bool {
    plan.is_handle(status, shape)
}

/// Whether the command takes `--wait`: a response is an operation handle.
pub fn has_wait(plan: &Plan, op: &Operation) -> bool {
    match plan.success_kind(op) {
        Success::Single { handle, .. } => handle,
        Success::Several => op.successes().any(|r| match &r.body {
            Some(ResponseBody::Json { shape, .. }) => is_handle(plan, r.status, shape),
            _ => false,
        }),
        _ => false,
    }
}

/// The body of a command's `run` function.
pub fn run_body(plan: &Plan, api: &Api, command: &Command, args: &Args, lib: &TokenStream) -> TokenStream {
    let op = command.op;
    if let (BodyPlan::Unsupported(media), Some(true)) = (&args.body, op.body.as_ref().map(|b| b.required)) {
        let message = format!("{} needs a {media} body, which the command line cannot send yet", op.id);
        return quote! {
            let _ = (client, out, args);
            ::std::result::Result::Err(crate::failure::Failure::usage(#message))
        };
    }
    let fields = body_fields(api, args);
    let json = match &args.body {
        BodyPlan::Json { .. } => quote! {
            #[allow(unused_variables)]
            let body_given = args.body.is_some() || !fields.is_empty();
            let body_json = crate::input::json_value(args.body.as_deref(), fields)?;
        },
        BodyPlan::Raw(_) => quote!(#[allow(unused_variables)] let body_given = args.body.is_some();),
        _ => TokenStream::new(),
    };
    let main = {
        let build = build_request(plan, op, args, lib);
        let output = response_output(plan, op, lib);
        quote!({ #build #output })
    };
    let body = match command.stream {
        Some(stream) => {
            let build = build_request(plan, stream, args, lib);
            let output = response_output(plan, stream, lib);
            quote!(if args.stream { #build #output } else #main)
        }
        None => main,
    };
    quote! {
        #fields
        #json
        #body
        ::std::result::Result::Ok(())
    }
}
