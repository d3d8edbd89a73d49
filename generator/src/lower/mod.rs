//! openapiv3's document to the IR: resolves every `$ref`, names every type
//! and checks everything the emitters rely on. This is the only module that
//! sees openapiv3 types.

mod conventions;
mod operation;
mod prose;
mod resolve;
mod schema;
#[cfg(test)]
mod tests;

use crate::diagnostics::{Diagnostic, Diagnostics, Pointer};
use crate::ir::{Api, ApiKeyLocation, OAuthFlow, SecurityScheme, Server, Tag};
use crate::naming::{Case, sanitize};
use openapiv3::OpenAPI;
use resolve::Resolver;
use schema::TypeBuilder;
use std::collections::BTreeMap;

/// Lowers a parsed document into the IR, or returns every problem found;
/// warnings (constructs handled in a documented way) go to `warnings`.
pub fn lower<'a>(
    doc: &'a OpenAPI,
    webhooks: &'a [(String, openapiv3::PathItem)],
    warnings: &mut Vec<Diagnostic>,
) -> Result<Api, Diagnostics> {
    let mut cx = Context { resolver: Resolver::new(doc), errors: Vec::new(), warnings: Vec::new() };
    let root = Pointer::root();

    let security_schemes = lower_security_schemes(doc, &mut cx);
    let mut types = TypeBuilder::new(doc, &mut cx);
    types.lower_components(&mut cx);
    let operations = operation::lower_operations(doc, &mut types, &mut cx);
    let webhook_at = Pointer::root().push("webhooks");
    let mut webhook_list = Vec::new();
    for (name, item) in webhooks {
        let at = webhook_at.push(name);
        webhook_list.extend(operation::lower_hook(
            doc,
            &mut types,
            &mut cx,
            &mut Vec::new(),
            name,
            "",
            item,
            &at,
            "Webhook",
        ));
    }
    let types = types.finish(&mut cx);

    let mut tags: Vec<Tag> = doc
        .tags
        .iter()
        .map(|t| Tag { name: t.name.clone(), slug: sanitize(&t.name, Case::Snake), description: t.description.clone() })
        .collect();
    for op in &operations {
        for tag in &op.tags {
            if !tags.iter().any(|t| &t.name == tag) {
                tags.push(Tag { name: tag.clone(), slug: sanitize(tag, Case::Snake), description: None });
            }
        }
    }
    if operations.is_empty() && cx.errors.is_empty() {
        cx.errors.push(root.push("paths").error("the spec declares no operations"));
    }

    let mut found = std::mem::take(&mut cx.warnings);
    found.sort();
    found.dedup();
    warnings.extend(found);
    if !cx.errors.is_empty() {
        let mut errors = cx.errors;
        errors.sort();
        errors.dedup();
        return Err(Diagnostics(errors));
    }
    let mut api = Api {
        title: doc.info.title.clone(),
        version: doc.info.version.clone(),
        description: doc.info.description.clone(),
        servers: doc
            .servers
            .iter()
            .map(|s| Server { url: s.url.clone(), description: s.description.clone() })
            .collect(),
        tags,
        types,
        operations,
        security_schemes,
        conventions: Default::default(),
        webhooks: webhook_list,
        prose: Default::default(),
    };
    conventions::detect(&mut api);
    prose::read(&mut api);
    Ok(api)
}

/// State shared by the lowering passes: where refs point and what went
/// wrong so far. Lowering keeps going after an error so that one run
/// reports as many problems as it can.
pub(crate) struct Context<'a> {
    pub(crate) resolver: Resolver<'a>,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Context<'_> {
    pub(crate) fn error(&mut self, at: &Pointer, message: impl Into<String>) {
        self.errors.push(at.error(message));
    }

    pub(crate) fn warn(&mut self, at: &Pointer, message: impl Into<String>) {
        self.warnings.push(at.warning(message));
    }
}

fn lower_security_schemes(doc: &OpenAPI, cx: &mut Context<'_>) -> BTreeMap<String, SecurityScheme> {
    let mut out = BTreeMap::new();
    let Some(components) = &doc.components else { return out };
    let base = Pointer::root().push("components").push("securitySchemes");
    for (name, scheme) in &components.security_schemes {
        let at = base.push(name);
        let scheme = match scheme {
            openapiv3::ReferenceOr::Item(s) => s,
            openapiv3::ReferenceOr::Reference { .. } => {
                cx.error(&at, "a security scheme given as a $ref is not supported; define it inline");
                continue;
            }
        };
        use openapiv3::SecurityScheme as S;
        let lowered = match scheme {
            S::HTTP { scheme, description, bearer_format, .. } if scheme.eq_ignore_ascii_case("bearer") => {
                SecurityScheme::Bearer { description: description.clone(), format: bearer_format.clone() }
            }
            S::HTTP { scheme, description, .. } if scheme.eq_ignore_ascii_case("basic") => {
                SecurityScheme::Basic { description: description.clone() }
            }
            S::HTTP { scheme, .. } => {
                cx.error(
                    &at.push("scheme"),
                    format!("the HTTP authentication scheme `{scheme}` is not supported; use bearer or basic"),
                );
                continue;
            }
            S::APIKey { location, name, description, .. } => SecurityScheme::ApiKey {
                description: description.clone(),
                location: match location {
                    openapiv3::APIKeyLocation::Header => ApiKeyLocation::Header,
                    openapiv3::APIKeyLocation::Query => ApiKeyLocation::Query,
                    openapiv3::APIKeyLocation::Cookie => ApiKeyLocation::Cookie,
                },
                name: name.clone(),
            },
            S::OAuth2 { flows, description, .. } => {
                let scopes = |s: &indexmap::IndexMap<String, String>| {
                    s.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
                };
                // The flows in a fixed order; each says which URLs it has.
                let flow = |kind: &str,
                            authorization: Option<&String>,
                            token: Option<&String>,
                            refresh: &Option<String>,
                            s| {
                    OAuthFlow {
                        kind: kind.to_owned(),
                        authorization_url: authorization.cloned(),
                        token_url: token.cloned(),
                        refresh_url: refresh.clone(),
                        scopes: scopes(s),
                    }
                };
                let out_flows: Vec<OAuthFlow> = [
                    flows
                        .implicit
                        .as_ref()
                        .map(|f| flow("implicit", Some(&f.authorization_url), None, &f.refresh_url, &f.scopes)),
                    flows
                        .password
                        .as_ref()
                        .map(|f| flow("password", None, Some(&f.token_url), &f.refresh_url, &f.scopes)),
                    flows
                        .client_credentials
                        .as_ref()
                        .map(|f| flow("clientCredentials", None, Some(&f.token_url), &f.refresh_url, &f.scopes)),
                    flows.authorization_code.as_ref().map(|f| {
                        flow(
                            "authorizationCode",
                            Some(&f.authorization_url),
                            Some(&f.token_url),
                            &f.refresh_url,
                            &f.scopes,
                        )
                    }),
                ]
                .into_iter()
                .flatten()
                .collect();
                SecurityScheme::OAuth2 { description: description.clone(), flows: out_flows }
            }
            S::OpenIDConnect { open_id_connect_url, description, .. } => {
                SecurityScheme::OpenIdConnect { description: description.clone(), url: open_id_connect_url.clone() }
            }
        };
        out.insert(name.clone(), lowered);
    }
    out
}
