//! `check(spec, expect)` tests of lowering: a small spec in, the IR out as
//! compact text (one line per type, field, operation, parameter and
//! response), so a test reads like the spec it checks. Refresh the
//! expectations after an intended change with
//! `UPDATE_EXPECT=1 cargo test -p runagent-codegen --lib lower::tests`.

use crate::ir::{Api, Field, ResponseBody, Shape, TypeKind};
use expect_test::{Expect, expect};
use std::fmt::Write;

/// A spec from the YAML of its `paths` and `components` (indented by two).
fn spec(paths: &str, components: &str) -> String {
    format!("openapi: 3.0.3\ninfo: {{title: T, version: '1'}}\npaths:\n{paths}\ncomponents:\n{components}")
}

fn check(spec: &str, expected: Expect) {
    let api = crate::load(spec).unwrap_or_else(|e| panic!("the spec should lower:\n{e}"));
    expected.assert_eq(&render(&api));
}

fn check_error(spec: &str, expected: Expect) {
    let e = crate::load(spec).expect_err("the spec should be refused");
    expected.assert_eq(&e.to_string());
}

fn shape(s: &Shape) -> String {
    match s {
        Shape::Named(n) => n.clone(),
        Shape::String(s) => {
            let mut out = "string".to_owned();
            if let Some(f) = &s.format {
                write!(out, "({f})").unwrap();
            }
            if s.min_length.is_some() || s.max_length.is_some() {
                write!(out, "[{:?}..{:?}]", s.min_length, s.max_length).unwrap();
            }
            if let Some(p) = &s.pattern {
                write!(out, " /{p}/").unwrap();
            }
            out
        }
        Shape::Integer(i) => {
            let mut out = if i.int32 { "i32".to_owned() } else { "i64".to_owned() };
            if i.minimum.is_some() || i.maximum.is_some() {
                write!(out, "[{:?}..={:?}]", i.minimum, i.maximum).unwrap();
            }
            out
        }
        Shape::Number(_) => "f64".into(),
        Shape::Boolean => "bool".into(),
        Shape::Array(a) => format!("[{}]", shape(&a.items)),
        Shape::Map(v) => format!("{{string: {}}}", shape(v)),
        Shape::Any => "any".into(),
        Shape::Binary => "binary".into(),
    }
}

fn field(f: &Field) -> String {
    let mut marks = Vec::new();
    if f.required {
        marks.push("required");
    }
    if f.nullable {
        marks.push("nullable");
    }
    if f.boxed {
        marks.push("boxed");
    }
    let wire = if f.name == f.api_name { String::new() } else { format!(" (\"{}\")", f.api_name) };
    let default = f.default.as_ref().map(|d| format!(" = {d}")).unwrap_or_default();
    format!("{}{wire}: {}{default} {}", f.name, shape(&f.shape), marks.join(" ")).trim_end().to_owned()
}

fn render(api: &Api) -> String {
    let mut out = String::new();
    for t in api.types.values() {
        let nullable = if t.nullable { " nullable" } else { "" };
        match &t.kind {
            TypeKind::Struct(s) => {
                let extra = match (&s.additional, s.deny_unknown) {
                    (Some(v), _) => format!(" +{{string: {}}}", shape(v)),
                    (None, true) => " closed".into(),
                    (None, false) => String::new(),
                };
                writeln!(out, "struct {}{nullable}{extra} @ {}", t.name, t.pointer).unwrap();
                for f in &s.fields {
                    writeln!(out, "  {}", field(f)).unwrap();
                }
            }
            TypeKind::Enum(e) => {
                let vs: Vec<String> = e.variants.iter().map(|v| format!("{}=\"{}\"", v.name, v.api_name)).collect();
                writeln!(out, "enum {}{nullable} {}", t.name, vs.join(" ")).unwrap();
            }
            TypeKind::OneOf(o) => {
                let vs: Vec<String> = o.variants.iter().map(|v| format!("{}({})", v.name, v.type_name)).collect();
                writeln!(out, "oneOf {}{nullable} {}", t.name, vs.join(" | ")).unwrap();
                if let Some(d) = &o.discriminator {
                    let map: Vec<String> = d.mapping.iter().map(|(value, v)| format!("{value}->{v}")).collect();
                    writeln!(out, "  by {}: {}", d.property, map.join(" ")).unwrap();
                }
            }
            TypeKind::Alias(s) => writeln!(out, "alias {}{nullable} = {}", t.name, shape(s)).unwrap(),
        }
    }
    for op in &api.operations {
        let secured = if op.secured { " secured" } else { "" };
        writeln!(out, "op {} {} {} ({}){secured}", op.name, op.method.as_str(), op.path, op.id).unwrap();
        for p in &op.parameters {
            let req = if p.required { " required" } else { "" };
            let wire = if p.name == p.api_name { String::new() } else { format!(" (\"{}\")", p.api_name) };
            let style = p.object_style.map(|s| format!(" {s:?}")).unwrap_or_default();
            writeln!(out, "  {} {}{wire}: {}{req}{style}", p.location.as_str(), p.name, shape(&p.shape)).unwrap();
        }
        if let Some(b) = &op.body {
            let req = if b.required { " required" } else { "" };
            for c in &b.contents {
                let variant = b.choice.as_ref().map(|name| format!(" ({name}::{})", c.variant)).unwrap_or_default();
                writeln!(out, "  body {} {:?}: {}{req}{variant}", c.media_type, c.encoding, shape(&c.shape)).unwrap();
            }
        }
        for r in &op.responses {
            let body = match &r.body {
                Some(ResponseBody::Json { shape: s, .. }) => format!(" json {}", shape(s)),
                Some(ResponseBody::Text { media_type }) => format!(" text {media_type}"),
                Some(ResponseBody::Binary { media_type }) => format!(" bytes {media_type}"),
                Some(ResponseBody::EventStream(s)) => {
                    let events: Vec<String> = s
                        .events
                        .iter()
                        .map(|e| {
                            let name = if e.any_name { "*" } else { e.api_name.as_str() };
                            format!("{name}({}){}", shape(&e.data), if e.terminal { "!" } else { "" })
                        })
                        .collect();
                    format!(" sse {}", events.join(" "))
                }
                None => String::new(),
            };
            let headers: Vec<&str> = r.headers.iter().map(|h| h.api_name.as_str()).collect();
            let headers = if headers.is_empty() { String::new() } else { format!(" headers {}", headers.join(",")) };
            writeln!(out, "  {}{body}{headers}", r.status.as_spec()).unwrap();
        }
        for c in &op.callbacks {
            let body = c.body.as_ref().map(|b| format!(" body {}", shape(&b.primary().shape))).unwrap_or_default();
            let answers: Vec<String> = c.responses.iter().map(|r| r.status.as_spec()).collect();
            writeln!(
                out,
                "  callback {} {} {}{body} answers {}",
                c.name,
                c.method.as_str(),
                c.expression,
                answers.join(",")
            )
            .unwrap();
        }
        if let Some(p) = &op.pagination {
            writeln!(out, "  paged by {} over {}: {}", p.page_param, p.items_field, shape(&p.item)).unwrap();
        }
    }
    out
}

#[test]
fn inline_objects_get_names_from_where_they_are_used() {
    check(
        &spec(
            "  /a:\n    post:\n      operationId: makeThing\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              required: [inner]\n              properties:\n                inner: {type: object, properties: {x: {type: integer, format: int32, minimum: 1}}}\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {type: array, items: {type: string, format: uuid}}",
            "  schemas: {}",
        ),
        expect![[r#"
            struct MakeThingBody @ #/paths/~1a/post/requestBody/content/application~1json/schema
              inner: MakeThingBodyInner required
            struct MakeThingBodyInner @ #/paths/~1a/post/requestBody/content/application~1json/schema/properties/inner
              x: i32[Some(1)..=None]
            op make_thing POST /a (makeThing)
              body application/json Json: MakeThingBody
              200 json [string(uuid)]
        "#]],
    );
}

#[test]
fn recursive_fields_are_boxed_and_nullable_kept_apart_from_optional() {
    check(
        &spec(
            "  /n:\n    get:\n      operationId: getNode\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Node'}",
            "  schemas:\n    Node:\n      type: object\n      required: [value, parent]\n      properties:\n        value: {type: string, nullable: true}\n        parent: {$ref: '#/components/schemas/Node'}\n        children: {type: array, items: {$ref: '#/components/schemas/Node'}}\n        note: {type: string, nullable: true, default: hi}",
        ),
        expect![[r#"
            struct Node @ #/components/schemas/Node
              value: string required nullable
              parent: Node required boxed
              children: [Node]
              note: string = "hi" nullable
            op get_node GET /n (getNode)
              200 json Node
        "#]],
    );
}

#[test]
fn enums_one_ofs_aliases_and_maps() {
    check(
        &spec(
            "  /x:\n    get:\n      operationId: x\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Either'}",
            "  schemas:\n    Color: {type: string, enum: [red, dark-blue, 3d]}\n    Either:\n      oneOf:\n        - $ref: '#/components/schemas/Bag'\n        - $ref: '#/components/schemas/Ids'\n    Bag: {type: object, additionalProperties: {type: boolean}}\n    Ids: {type: array, items: {type: string, minLength: 1, maxLength: 8}}\n    Closed: {type: object, additionalProperties: false, properties: {c: {$ref: '#/components/schemas/Color'}}}",
        ),
        expect![[r#"
            alias Bag = {string: bool}
            struct Closed closed @ #/components/schemas/Closed
              c: Color
            enum Color Red="red" DarkBlue="dark-blue" V3d="3d"
            oneOf Either Bag(Bag) | Ids(Ids)
            alias Ids = [string[Some(1)..Some(8)]]
            op x GET /x (x)
              200 json Either
        "#]],
    );
}

#[test]
fn discriminators_map_values_explicitly_by_schema_name_and_by_single_value() {
    check(
        &spec(
            "  /x:\n    get:\n      operationId: x\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Pet'}",
            "  schemas:\n    Pet:\n      oneOf:\n        - $ref: '#/components/schemas/Cat'\n        - $ref: '#/components/schemas/Dog'\n        - {title: Unknown, type: object, properties: {t: {type: string, enum: [bird]}}}\n      discriminator:\n        propertyName: t\n        mapping: {cat: '#/components/schemas/Cat', kitten: Cat}\n    Cat: {type: object, properties: {t: {type: string}}}\n    Dog: {type: object, properties: {t: {type: string, enum: [dog]}}}",
        ),
        expect![[r#"
            struct Cat @ #/components/schemas/Cat
              t: string
            struct Dog @ #/components/schemas/Dog
              t: DogT
            enum DogT Dog="dog"
            oneOf Pet Cat(Cat) | Dog(Dog) | Unknown2(PetUnknown)
              by t: cat->Cat kitten->Cat Dog->Dog dog->Dog bird->Unknown2
            struct PetUnknown @ #/components/schemas/Pet/oneOf/2
              t: PetUnknownT
            enum PetUnknownT Bird="bird"
            op x GET /x (x)
              200 json Pet
        "#]],
    );
}

#[test]
fn a_discriminator_mapping_to_a_schema_that_is_no_alternative_is_refused() {
    check_error(
        &spec(
            "  /x:\n    get:\n      operationId: x\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Pet'}",
            "  schemas:\n    Pet:\n      oneOf:\n        - $ref: '#/components/schemas/Cat'\n      discriminator:\n        propertyName: t\n        mapping: {dog: '#/components/schemas/Dog'}\n    Cat: {type: object, properties: {t: {type: string}}}\n    Dog: {type: object, properties: {t: {type: string}}}",
        ),
        expect![
            "error at #/components/schemas/Pet/discriminator/mapping/dog: `#/components/schemas/Dog` is not one of the alternatives"
        ],
    );
}

#[test]
fn parameters_merge_path_level_ones_and_avoid_the_emitters_names() {
    // Operation parameters override path-level ones of the same name and
    // place; path parameters come first, in template order; `Accept` is the
    // HTTP layer's; `send` and `state` are taken by the generated code.
    check(
        &spec(
            "  /a/{b}/{a}:\n    parameters:\n      - {name: a, in: path, required: true, schema: {type: string}}\n      - {name: q, in: query, schema: {type: string}}\n    get:\n      operationId: getA\n      parameters:\n        - {name: q, in: query, required: true, schema: {type: integer}}\n        - {name: send, in: query, schema: {type: boolean}}\n        - {name: state, in: query, schema: {type: string}}\n        - {name: Accept, in: header, schema: {type: string}}\n        - {name: X-Trace, in: header, schema: {type: string}}\n        - {name: b, in: path, required: true, schema: {type: integer}}\n      responses:\n        '204': {description: none}\n        '4XX': {description: client error}\n        default: {description: other}\n        '200': {description: ok}",
            "  schemas: {}",
        ),
        expect![[r#"
            op get_a GET /a/{b}/{a} (getA)
              path b: i64 required
              path a: string required
              query q: i64 required
              query send_2 ("send"): bool
              query state_2 ("state"): string
              header x_trace ("X-Trace"): string
              200
              204
              4XX
              default
        "#]],
    );
}

#[test]
fn a_paged_list_is_recognized_by_its_shape() {
    let paths = "  /pets:\n    get:\n      operationId: listPets\n      security: [{key: []}]\n      parameters:\n        - {name: page, in: query, schema: {type: integer}}\n        - {name: limit, in: query, schema: {type: integer}}\n      responses:\n        '200':\n          description: ok\n          headers:\n            X-RateLimit-Limit: {schema: {type: integer}}\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/PetList'}";
    let components = "  securitySchemes:\n    key: {type: http, scheme: bearer}\n  schemas:\n    PetList:\n      type: object\n      required: [data, pagination]\n      properties:\n        data: {type: array, items: {type: string}}\n        pagination:\n          type: object\n          required: [page, pages]\n          properties: {page: {type: integer}, pages: {type: integer}, total: {type: integer}}";
    check(
        &spec(paths, components),
        expect![[r#"
            struct PetList @ #/components/schemas/PetList
              data: [string] required
              pagination: PetListPagination required
            struct PetListPagination @ #/components/schemas/PetList/properties/pagination
              page: i64 required
              pages: i64 required
              total: i64
            op list_pets GET /pets (listPets) secured
              query page: i64
              query limit: i64
              200 json PetList headers X-RateLimit-Limit
              paged by page over data: string
        "#]],
    );
    // Without a page count the client could not know where to stop.
    let no_count = components.replace("required: [page, pages]", "required: [page]");
    let api = crate::load(&spec(paths, &no_count)).unwrap();
    assert_eq!(api.operations[0].pagination, None);
}

#[test]
fn streams_keep_their_events_and_know_which_end_them() {
    check(
        &spec(
            "  /s:\n    get:\n      operationId: watch\n      responses:\n        '200':\n          description: events\n          content:\n            text/event-stream:\n              schema: {type: string}\n              x-sse-events:\n                tick: {type: object, properties: {n: {type: integer}}}\n                done: {type: object}",
            "  schemas: {}",
        ),
        expect![[r#"
            struct WatchTickEvent @ #/paths/~1s/get/responses/200/content/text~1event-stream/x-sse-events/tick
              n: i64
            op watch GET /s (watch)
              200 sse tick(WatchTickEvent) done({string: any})!
        "#]],
    );
}

#[test]
fn a_stream_described_by_its_schema_alone_has_one_event_of_any_name() {
    check(
        &spec(
            "  /s:\n    get:\n      operationId: watch\n      responses:\n        '200':\n          description: events\n          content:\n            text/event-stream:\n              schema: {$ref: '#/components/schemas/Tick'}",
            "  schemas:\n    Tick: {type: object, properties: {n: {type: integer}}}",
        ),
        expect![[r#"
            struct Tick @ #/components/schemas/Tick
              n: i64
            op watch GET /s (watch)
              200 sse *(Tick)
        "#]],
    );
}

#[test]
fn object_query_parameters_are_spread_as_form_pairs_or_deep_objects() {
    check(
        &spec(
            "  /x:\n    get:\n      operationId: x\n      parameters:\n        - {name: page, in: query, schema: {type: object, properties: {n: {type: integer}}}}\n        - {name: f, in: query, style: deepObject, schema: {type: object, properties: {s: {type: string}}}}\n      responses:\n        '204': {description: ok}",
            "  schemas: {}",
        ),
        expect![[r#"
            struct XF @ #/paths/~1x/get/parameters/1/schema
              s: string
            struct XPage @ #/paths/~1x/get/parameters/0/schema
              n: i64
            op x GET /x (x)
              query page: XPage Form
              query f: XF DeepObject
              204
        "#]],
    );
    check_error(
        &spec(
            "  /x:\n    get:\n      operationId: x\n      parameters:\n        - {name: page, in: query, explode: false, schema: {type: object, properties: {n: {type: integer}}}}\n      responses:\n        '204': {description: ok}",
            "  schemas: {}",
        ),
        expect![
            "error at #/paths/~1x/get/parameters/0/explode: object query parameters need `explode: true` (`key=value` pairs) or `style: deepObject`"
        ],
    );
}

#[test]
fn all_of_members_merge_into_one_struct() {
    check(
        &spec(
            "  /p:\n    get:\n      operationId: getPet\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Pet'}",
            "  schemas:\n    Named:\n      type: object\n      required: [name]\n      properties:\n        name: {type: string}\n        tag: {type: string}\n    Pet:\n      description: A named thing with an id.\n      allOf:\n        - $ref: '#/components/schemas/Named'\n        - type: object\n          required: [id]\n          properties:\n            id: {type: integer, format: int32}\n            tag: {type: string, maxLength: 3}",
        ),
        expect![[r#"
            struct Named @ #/components/schemas/Named
              name: string required
              tag: string
            struct Pet @ #/components/schemas/Pet
              name: string required
              tag: string[None..Some(3)]
              id: i32 required
            op get_pet GET /p (getPet)
              200 json Pet
        "#]],
    );
    let api = crate::load_with_warnings(&spec(
        "  /p:\n    get:\n      operationId: getPet\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema:\n                allOf:\n                  - {type: object, properties: {a: {type: string}}}\n                  - {type: string}",
        "  schemas: {}",
    ));
    let e = api.unwrap_err().to_string();
    assert!(e.contains("allOf/1: an `allOf` member must be an object"), "{e}");
}

#[test]
fn callbacks_are_typed_and_kept_apart_from_operations() {
    check(
        &spec(
            "  /subscriptions:\n    post:\n      operationId: subscribe\n      parameters:\n        - {name: url, in: query, required: true, schema: {type: string}}\n      responses:\n        '204': {description: subscribed}\n      callbacks:\n        onEvent:\n          '{$request.query.url}/events':\n            post:\n              requestBody:\n                content:\n                  application/json:\n                    schema: {type: object, properties: {at: {type: string, format: date-time}}}\n              responses:\n                '200': {description: received}\n                '410': {description: unsubscribe}",
            "  schemas: {}",
        ),
        expect![[r#"
            struct SubscribeOnEventBody @ #/paths/~1subscriptions/post/callbacks/onEvent/{$request.query.url}~1events/post/requestBody/content/application~1json/schema
              at: string(date-time)
            op subscribe POST /subscriptions (subscribe)
              query url: string required
              204
              callback onEvent POST {$request.query.url}/events body SubscribeOnEventBody answers 200,410
        "#]],
    );
}

#[test]
fn refused_constructs_are_reported_where_they_are() {
    check_error(
        &spec(
            "  /a:\n    get:\n      operationId: a\n      parameters:\n        - {name: n, in: query, schema: {type: integer, multipleOf: 2}}\n      responses:\n        '200': {description: ok}",
            "  schemas:\n    E: {not: {type: string}}",
        ),
        expect![[r#"
            error at #/components/schemas/E: `not` is not supported
            error at #/paths/~1a/get/parameters/0/schema/multipleOf: `multipleOf` is not supported yet"#]],
    );
}

#[test]
fn real_world_3_0_shapes_are_read_as_meant_with_warnings() {
    // A null alternative (3.1 style) makes the other one nullable; keywords
    // of another type are ignored; `items` alone makes an array; an
    // `allOf` of one schema and annotations is that schema.
    let text = spec(
        "  /a:\n    get:\n      operationId: a\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/R'}",
        "  schemas:\n    Kind: {type: string, enum: [a, b]}\n    R:\n      type: object\n      properties:\n        maybe: {anyOf: [{type: string}, {type: 'null'}]}\n        list: {type: array, items: {type: string}, required: [x]}\n        bare: {items: {type: integer}}\n        kind:\n          allOf: [{$ref: '#/components/schemas/Kind'}, {description: The kind.}]",
    );
    check(
        &text,
        expect![[r#"
            enum Kind A="a" B="b"
            struct R @ #/components/schemas/R
              maybe: string nullable
              list: [string]
              bare: [i64]
              kind: Kind
            op a GET /a (a)
              200 json R
        "#]],
    );
    let (_, warnings) = crate::load_with_warnings(&text).unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "warning at #/components/schemas/R/properties/list: `required` does not apply to `type: array` and is ignored"
        ]
    );
}
