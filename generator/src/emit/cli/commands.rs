//! `src/commands.rs` of the command-line crate: the clap subcommands (one
//! enum per group), one `Args` struct and one `run` function per command,
//! and the dispatch from a parsed command to its function.

use super::args::{self, Args, help_text};
use super::plan::{Command, Entry};
use super::run::{has_wait, run_body};
use crate::emit::client::{Plan, Success};
use crate::ir::Api;
use crate::naming::{Case, sanitize};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The `about` (one line) and `long_about` of a command.
fn abouts(command: &Command) -> (String, String) {
    let op = command.op;
    let about = op
        .summary
        .clone()
        .or_else(|| help_text(op.description.as_deref()))
        .unwrap_or_else(|| format!("{} {}", op.method.as_str(), op.path));
    let mut long = about.clone();
    if let Some(d) = &op.description {
        long.push_str("\n\n");
        long.push_str(d.trim());
    }
    long.push_str(&format!("\n\nSends {} {} ({}).", op.method.as_str(), op.path, op.id));
    if let Some(stream) = command.stream {
        long.push_str(&format!(
            " With --stream, sends {} {} ({}) and prints its events as they arrive.",
            stream.method.as_str(),
            stream.path,
            stream.id
        ));
    }
    if op.deprecated {
        let note = match &op.sunset {
            Some(date) => format!("\n\nDeprecated: removed after {date}."),
            None => "\n\nDeprecated.".to_owned(),
        };
        long.push_str(&note);
    }
    (about, long)
}

struct Emitted {
    variant: Ident,
    name: String,
    args_struct: TokenStream,
    run_fn: TokenStream,
    run_ident: Ident,
    args_ident: Ident,
    about: String,
    long_about: String,
}

fn camel(name: &str, taken: &mut Vec<String>) -> Ident {
    let base = sanitize(name, Case::UpperCamel);
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}{n}");
        n += 1;
    }
    taken.push(candidate.clone());
    format_ident!("{}", candidate)
}

fn emit_command(plan: &Plan, api: &Api, command: &Command, lib: &TokenStream, taken: &mut Vec<String>) -> Emitted {
    let op = command.op;
    let a: Args = args::args(plan, api, command);
    let mut fields = args::fields(api, plan, command, &a);
    let paged =
        op.pagination.is_some() && matches!(plan.success_kind(op), Success::Single { shape: Some(_), handle: false });
    if paged {
        fields.push(
            quote!(#[arg(long = "all", help = "Fetch every page, not just one, and print every item.")] pub all: bool,),
        );
    }
    if has_wait(plan, op) {
        fields.push(quote!(#[arg(long = "wait", help = "Wait until the operation finishes (polling it) and print its final state.")] pub wait: bool,));
    }
    if command.stream.is_some() {
        fields.push(quote!(#[arg(long = "stream", help = "Stream the answer: print its events as they arrive, resuming after a dropped connection.")] pub stream: bool,));
    }
    let args_ident = format_ident!("{}Args", op.type_prefix);
    let run_ident = format_ident!("run_{}", op.name);
    let doc = format!(" The arguments of `{}`.", op.id);
    let args_struct = quote! {
        #[doc = #doc]
        #[derive(::std::fmt::Debug, ::clap::Args)]
        pub struct #args_ident {
            #(#fields)*
        }
    };
    let body = run_body(plan, api, command, &a, lib);
    let doc = format!(" Sends `{}` and prints the answer.", op.id);
    let run_fn = quote! {
        #[doc = #doc]
        // Commands that print nothing (an empty answer) leave `out` unused.
        #[allow(unused_variables)]
        pub async fn #run_ident(
            client: &crate::sdk::Client,
            out: &crate::output::Output,
            args: #args_ident,
        ) -> ::std::result::Result<(), crate::failure::Failure> {
            #body
        }
    };
    let (about, mut long_about) = abouts(command);
    if let args::BodyPlan::Unsupported(media) = &a.body {
        long_about.push_str(&format!(
            "\n\nIts request body ({media}) cannot be given on the command line yet: send it with the client or curl."
        ));
    }
    Emitted {
        variant: camel(&command.name, taken),
        name: command.name.clone(),
        args_struct,
        run_fn,
        run_ident,
        args_ident,
        about,
        long_about,
    }
}

/// The whole of `src/commands.rs`.
pub fn commands_rs(plan: &Plan, api: &Api, entries: &[Entry], lib: &TokenStream) -> TokenStream {
    let mut items = Vec::new();
    let mut top_variants = Vec::new();
    let mut top_arms = Vec::new();
    let mut top_taken = vec!["Completions".to_owned()];
    for entry in entries {
        match entry {
            Entry::Single(command) => {
                let e = emit_command(plan, api, command, lib, &mut top_taken);
                let (variant, name, about, long_about, args_ident, run_ident) =
                    (&e.variant, &e.name, &e.about, &e.long_about, &e.args_ident, &e.run_ident);
                top_variants.push(quote! {
                    #[command(name = #name, about = #about, long_about = #long_about)]
                    #variant(#args_ident),
                });
                top_arms.push(quote!(Command::#variant(args) => #run_ident(client, out, args).await,));
                items.push(e.args_struct);
                items.push(e.run_fn);
            }
            Entry::Group { name, about, commands } => {
                let group_variant = camel(name, &mut top_taken);
                let group_enum = format_ident!("{}Command", group_variant);
                let mut inner_taken = Vec::new();
                let mut variants = Vec::new();
                let mut arms = Vec::new();
                for command in commands {
                    let e = emit_command(plan, api, command, lib, &mut inner_taken);
                    let (variant, cname, cabout, long_about, args_ident, run_ident) =
                        (&e.variant, &e.name, &e.about, &e.long_about, &e.args_ident, &e.run_ident);
                    variants.push(quote! {
                        #[command(name = #cname, about = #cabout, long_about = #long_about)]
                        #variant(#args_ident),
                    });
                    arms.push(quote!(#group_enum::#variant(args) => #run_ident(client, out, args).await,));
                    items.push(e.args_struct);
                    items.push(e.run_fn);
                }
                let about = help_text(about.as_deref()).unwrap_or_else(|| format!("The {name} commands."));
                let doc = format!(" The `{name}` commands.");
                items.push(quote! {
                    #[doc = #doc]
                    // The variants hold their commands' arguments, parsed once.
                    #[allow(clippy::large_enum_variant)]
                    #[derive(::std::fmt::Debug, ::clap::Subcommand)]
                    pub enum #group_enum {
                        #(#variants)*
                    }
                });
                top_variants.push(quote! {
                    #[command(name = #name, about = #about, subcommand_required = true, arg_required_else_help = true)]
                    #[command(subcommand)]
                    #group_variant(#group_enum),
                });
                top_arms.push(quote!(Command::#group_variant(command) => match command { #(#arms)* },));
            }
        }
    }
    quote! {
        //! The commands: one per operation of the API, grouped by tag, and
        //! `completions`.
        // Deprecated operations stay usable from the command line until
        // the API removes them.
        #![allow(deprecated)]

        /// Every command.
        // The variants hold their commands' arguments, parsed once.
        #[allow(clippy::large_enum_variant)]
        #[derive(::std::fmt::Debug, ::clap::Subcommand)]
        pub enum Command {
            #(#top_variants)*
            /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
            #[command(name = "completions")]
            Completions {
                /// The shell.
                #[arg(value_enum)]
                shell: ::clap_complete::Shell,
            },
        }

        /// Runs a parsed command (`completions` is handled before a client is made).
        pub async fn dispatch(
            client: &crate::sdk::Client,
            out: &crate::output::Output,
            command: Command,
        ) -> ::std::result::Result<(), crate::failure::Failure> {
            match command {
                #(#top_arms)*
                Command::Completions { .. } => ::std::result::Result::Ok(()),
            }
        }

        #(#items)*
    }
}
