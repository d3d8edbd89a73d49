//! The dependency lines of the generated crates' `Cargo.toml`.
//!
//! The generated crates must build and publish on their own, so they cannot
//! use `workspace = true`; these lines carry the same versions as the
//! workspace's `[workspace.dependencies]`, and xtask's test
//! `generated_crates_use_workspace_pins` fails when the two drift apart.

/// `runagent-client`'s dependencies.
pub const CLIENT: &[(&str, &str)] = &[
    ("bytes", r#""1.12.2""#),
    ("fastrand", r#""2.5.0""#),
    ("futures", r#""0.3.34""#),
    ("http", r#""1.5.0""#),
    ("httpdate", r#""1.0.3""#),
    ("percent-encoding", r#""2.3.2""#),
    ("regex", r#""1.13.2""#),
    (
        "reqwest",
        r#"{ version = "0.13.5", default-features = false, features = ["rustls", "json", "stream", "query"] }"#,
    ),
    ("serde", r#"{ version = "1.0.229", features = ["derive"] }"#),
    ("serde_json", r#""1.0.154""#),
    ("serde_urlencoded", r#""0.7.1""#),
    ("thiserror", r#""2.0.21""#),
    ("time", r#"{ version = "0.3.55", default-features = false, features = ["parsing", "macros"] }"#),
    ("tokio", r#"{ version = "1.54.1", features = ["time"] }"#),
    ("tracing", r#""0.1.44""#),
    ("uuid", r#"{ version = "1.29.3", features = ["v4", "fast-rng"] }"#),
];

/// The command-line crate's dependencies (beside the client crate).
pub const CLI: &[(&str, &str)] = &[
    ("clap", r#"{ version = "4.6.9", features = ["derive"] }"#),
    ("clap_complete", r#""4.6.12""#),
    ("futures", r#""0.3.34""#),
    ("httpdate", r#""1.0.3""#),
    ("serde", r#"{ version = "1.0.229", features = ["derive"] }"#),
    ("serde_json", r#""1.0.154""#),
    ("serde_yaml_ng", r#""0.10.0""#),
    ("tokio", r#"{ version = "1.54.1", features = ["rt", "macros", "time"] }"#),
    ("toml", r#"{ version = "1.2.2", default-features = false, features = ["parse", "serde"] }"#),
];

/// `runagent-server`'s dependencies.
pub const SERVER: &[(&str, &str)] = &[
    ("axum", r#""0.8.9""#),
    ("bytes", r#""1.12.2""#),
    ("futures", r#""0.3.34""#),
    ("http", r#""1.5.0""#),
    ("httpdate", r#""1.0.3""#),
    ("multer", r#""3.1.0""#),
    ("regex", r#""1.13.2""#),
    ("serde", r#"{ version = "1.0.229", features = ["derive"] }"#),
    ("serde_json", r#""1.0.154""#),
    ("serde_path_to_error", r#""0.1.20""#),
    ("serde_urlencoded", r#""0.7.1""#),
    ("sha2", r#""0.10.9""#),
    ("thiserror", r#""2.0.21""#),
    ("time", r#"{ version = "0.3.55", default-features = false, features = ["parsing", "macros"] }"#),
    ("tokio", r#"{ version = "1.54.1", features = ["sync", "time", "rt", "net"] }"#),
    ("tower", r#"{ version = "0.5.3", features = ["util"] }"#),
    ("tracing", r#""0.1.44""#),
    ("uuid", r#"{ version = "1.29.3", features = ["v4", "fast-rng"] }"#),
];

/// `runagent-server`'s optional dependencies: (cargo feature, crate, line
/// without `optional = true`, which the emitter adds). Each feature turns on
/// the runtime module of the same purpose (`emit::server::module_use`).
pub const SERVER_OPTIONAL: &[(&str, &str, &str)] = &[(
    "redis",
    "redis",
    r#"{ version = "1.8.1", default-features = false, features = ["tokio-comp", "connection-manager", "script"] }"#,
)];
