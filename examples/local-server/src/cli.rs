//! Command-line flags, the `--allow-remote` check and the API keys the
//! server starts with.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use std::time::Duration;

use clap::Parser;
use runagent_server::RateLimitConfig;

use crate::store::{ApiKeyRecord, DbLocation, Store, StoreResult, Tier};

/// The RunAgent API, running for real on this machine.
#[derive(Debug, Clone, Parser)]
#[command(name = "runagent-local", version, about, long_about = None)]
pub struct Cli {
    /// The address to listen on. Anything but a loopback address needs
    /// --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: String,

    /// The port to listen on; 0 picks any free port (see the `listening
    /// on` line).
    #[arg(long, value_name = "PORT", default_value_t = 8450)]
    pub port: u16,

    /// The database: an SQLite file (created when missing), `:memory:` for
    /// a throwaway store, or a `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// URL, which any number of instances can share.
    #[arg(long, value_name = "PATH|URL", default_value = ".runagent/runagent.db")]
    pub db: DbLocation,

    /// A Redis server (`redis://[USER:PASSWORD@]HOST:PORT/[DB]`, Redis 7 or
    /// newer) for the rate-limit counters, idempotency records and stream
    /// logs, shared by every instance given the same URL: streams then
    /// resume on any instance. Without it they live in the database
    /// (counters, idempotency) and in this process (streams).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,

    /// How long a job's lease (deployments and async invocations) lasts
    /// without renewal: when an instance dies, its jobs are taken over by
    /// another about this long after. Renewed every third of it.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_lease)]
    pub lease: Duration,

    /// This instance's id, unique among the instances sharing the database;
    /// it names the instance in logs and in the error of an operation it
    /// could not finish. A random `inst_...` by default.
    #[arg(long, value_name = "ID", value_parser = parse_instance_id)]
    pub instance_id: Option<String>,

    /// An API key to accept, with its rate-limit tier (free, pro or
    /// enterprise; pro when omitted). Repeatable. Keys are stored hashed and
    /// stay valid across restarts. Without any, a development key is
    /// created and printed.
    #[arg(long = "api-key", value_name = "KEY[:TIER]", value_parser = parse_api_key)]
    pub api_keys: Vec<ApiKeyArg>,

    /// The directory holding the programs of `command` agents; entrypoints
    /// are relative to it and may not leave it.
    #[arg(long, value_name = "DIR", default_value = "agents")]
    pub agents_dir: PathBuf,

    /// Allow --bind to name a non-loopback address, exposing the server
    /// (and its agents' programs) to the network.
    #[arg(long)]
    pub allow_remote: bool,

    /// On SIGINT or SIGTERM, how long in-flight requests, streams and
    /// operations get to finish before they are cut off.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub shutdown_timeout: u64,

    /// Overrides a tier's requests per window (free 100, pro 1000,
    /// enterprise 10000 by default), e.g. `pro=1000000` for a load or
    /// contract test that must not be throttled. Repeatable.
    #[arg(long = "rate-limit", value_name = "TIER=LIMIT", value_parser = parse_rate_limit)]
    pub rate_limits: Vec<(Tier, u64)>,

    /// The rate-limit window's length.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_window: u64,
}

/// Parses a lease in seconds (fractions allowed), from 0.1 to a day.
pub fn parse_lease(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.1..=86_400.0).contains(&seconds) {
        return Err("a lease is 0.1 to 86400 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses an instance id: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn parse_instance_id(text: &str) -> Result<String, String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if text.is_empty() || text.len() > 64 || !text.chars().all(valid) {
        return Err("an instance id is 1 to 64 letters, digits, - _ or . characters".to_owned());
    }
    Ok(text.to_owned())
}

/// Parses `TIER=LIMIT`.
pub fn parse_rate_limit(text: &str) -> Result<(Tier, u64), String> {
    let (tier, limit) = text.split_once('=').ok_or_else(|| format!("expected TIER=LIMIT, got {text:?}"))?;
    let tier = Tier::parse(tier).ok_or_else(|| format!("unknown tier {tier:?}: expected free, pro or enterprise"))?;
    let limit = limit.parse().map_err(|_| format!("the limit {limit:?} is not a whole number"))?;
    Ok((tier, limit))
}

/// One `--api-key KEY[:TIER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyArg {
    /// The key, as clients send it after `Bearer `.
    pub key: String,
    /// Its tier.
    pub tier: Tier,
}

/// The tier of keys given without one, and of the development key: enough
/// requests per hour for interactive work and test runs.
pub const DEFAULT_TIER: Tier = Tier::Pro;

/// Parses `KEY[:TIER]`. A key is 1 to 256 characters of the bearer token
/// alphabet (RFC 6750 `b64token`, which has no `:`).
pub fn parse_api_key(text: &str) -> Result<ApiKeyArg, String> {
    let (key, tier) = match text.split_once(':') {
        Some((key, tier)) => {
            let tier =
                Tier::parse(tier).ok_or_else(|| format!("unknown tier {tier:?}: expected free, pro or enterprise"))?;
            (key, tier)
        }
        None => (text, DEFAULT_TIER),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if key.is_empty() || key.len() > 256 || !key.chars().all(valid) {
        return Err("an API key is 1 to 256 letters, digits or - . _ ~ + / = characters".to_owned());
    }
    Ok(ApiKeyArg { key: key.to_owned(), tier })
}

/// A configuration mistake found before starting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// `--bind` is not an IP address.
    #[error("--bind {0:?} is not an IP address (or `localhost`)")]
    BadAddress(String),
    /// `--bind` names a non-loopback address without `--allow-remote`.
    #[error(
        "--bind {0} is not a loopback address: this would expose the server and its agents' \
         programs to the network; pass --allow-remote if that is what you want"
    )]
    RemoteNotAllowed(IpAddr),
}

impl Cli {
    /// The rate limits: the API's defaults with `--rate-limit` and
    /// `--rate-limit-window` applied.
    pub fn rate_limit_config(&self) -> RateLimitConfig {
        let mut config = RateLimitConfig::default().window(Duration::from_secs(self.rate_limit_window));
        for &(tier, limit) in &self.rate_limits {
            config = match tier {
                Tier::Free => config.free(limit),
                Tier::Pro => config.pro(limit),
                Tier::Enterprise => config.enterprise(limit),
            };
        }
        config
    }

    /// The socket address to bind, once the `--allow-remote` rule is met.
    pub fn socket_addr(&self) -> Result<SocketAddr, CliError> {
        let ip = if self.bind.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.bind
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| CliError::BadAddress(self.bind.clone()))?
        };
        if !ip.is_loopback() && !self.allow_remote {
            return Err(CliError::RemoteNotAllowed(ip));
        }
        Ok(SocketAddr::new(ip, self.port))
    }
}

/// The base URL of a server listening on `addr`.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}/v1")
}

/// Stores the keys given with `--api-key`; without any, creates a
/// development key, stores it and prints it to `out` (the only time it is
/// ever shown: the database keeps its hash). Returns the keys stored now,
/// with their records.
pub async fn register_keys(
    store: &Store,
    keys: &[ApiKeyArg],
    out: &mut (dyn Write + Send),
) -> StoreResult<Vec<(String, ApiKeyRecord)>> {
    let mut records = Vec::new();
    for arg in keys {
        records.push((arg.key.clone(), store.upsert_key(arg.key.clone(), arg.tier, "cli".to_owned()).await?));
    }
    if keys.is_empty() {
        let key = crate::ids::new_api_key();
        let record = store.upsert_key(key.clone(), DEFAULT_TIER, "dev".to_owned()).await?;
        // Failing to print is not worth failing the start over; the key
        // would just be unknown to the user.
        let _ = writeln!(out, "development API key: {key} (tier {}; stored hashed, shown only now)", record.tier);
        let _ = out.flush();
        records.push((key, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("runagent-local").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let cli = cli(&[]);
        assert_eq!(cli.port, 8450);
        assert_eq!(cli.db, DbLocation::File(PathBuf::from(".runagent/runagent.db")));
        assert_eq!(base_url(cli.socket_addr().unwrap()), "http://127.0.0.1:8450/v1");
        assert!(cli.api_keys.is_empty());
        assert_eq!(cli.lease, Duration::from_secs(10));
        assert_eq!(cli.instance_id, None);
    }

    #[test]
    fn flags_parse() {
        let cli = cli(&[
            "--port",
            "0",
            "--db",
            ":memory:",
            "--api-key",
            "abc",
            "--api-key",
            "def:free",
            "--agents-dir",
            "/tmp/agents",
            "--bind",
            "::1",
        ]);
        assert_eq!(cli.db, DbLocation::Memory);
        assert_eq!(
            cli.api_keys,
            vec![ApiKeyArg { key: "abc".into(), tier: Tier::Pro }, ApiKeyArg { key: "def".into(), tier: Tier::Free },]
        );
        assert_eq!(base_url(cli.socket_addr().unwrap()), "http://[::1]:0/v1");
    }

    #[test]
    fn postgres_leases_and_instance_ids_parse() {
        let cli = cli(&["--db", "postgres://u:p@127.0.0.1:5432/runagent", "--lease", "2.5", "--instance-id", "a-1"]);
        assert_eq!(cli.db, DbLocation::Postgres("postgres://u:p@127.0.0.1:5432/runagent".into()));
        assert_eq!(cli.lease, Duration::from_millis(2500));
        assert_eq!(cli.instance_id.as_deref(), Some("a-1"));
        assert!(Cli::try_parse_from(["runagent-local", "--lease", "0"]).is_err());
        assert!(Cli::try_parse_from(["runagent-local", "--lease", "soon"]).is_err());
        assert!(Cli::try_parse_from(["runagent-local", "--instance-id", "a b"]).is_err());
    }

    #[test]
    fn rate_limits_override_the_defaults() {
        let config = cli(&["--rate-limit", "pro=1000000", "--rate-limit-window", "60"]).rate_limit_config();
        assert_eq!((config.free, config.pro, config.enterprise), (100, 1_000_000, 10_000));
        assert_eq!(config.window, Duration::from_secs(60));
        assert_eq!(cli(&[]).rate_limit_config(), RateLimitConfig::default());
        assert!(parse_rate_limit("gold=5").unwrap_err().contains("unknown tier"));
        assert!(parse_rate_limit("pro").is_err());
        assert!(parse_rate_limit("pro=-1").is_err());
        assert!(Cli::try_parse_from(["runagent-local", "--rate-limit-window", "0"]).is_err());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(parse_api_key("k:enterprise").is_ok());
        assert!(parse_api_key("k:gold").unwrap_err().contains("unknown tier"));
        assert!(parse_api_key("").is_err());
        assert!(parse_api_key("has space").is_err());
        assert!(parse_api_key(":pro").is_err());
        let mut args = vec!["runagent-local", "--api-key", "k:gold"];
        assert!(Cli::try_parse_from(&args).is_err());
        args[2] = "ok-key";
        assert!(Cli::try_parse_from(&args).is_ok());
    }

    #[test]
    fn remote_binding_needs_the_flag() {
        assert_eq!(
            cli(&["--bind", "0.0.0.0"]).socket_addr(),
            Err(CliError::RemoteNotAllowed("0.0.0.0".parse().unwrap()))
        );
        assert!(cli(&["--bind", "0.0.0.0", "--allow-remote"]).socket_addr().is_ok());
        assert!(cli(&["--bind", "localhost"]).socket_addr().is_ok());
        assert!(cli(&["--bind", "127.0.0.2"]).socket_addr().is_ok());
        assert_eq!(cli(&["--bind", "example"]).socket_addr(), Err(CliError::BadAddress("example".into())));
    }

    #[tokio::test]
    async fn without_keys_a_development_key_is_created_and_printed() {
        let store = Store::open(&DbLocation::Memory).await.unwrap();
        let mut out = Vec::new();
        let records = register_keys(&store, &[], &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        let key = out.strip_prefix("development API key: ").and_then(|rest| rest.split_whitespace().next()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, key);
        assert_eq!(records[0].1.label, "dev");
        assert_eq!(store.find_key(key).await.unwrap().unwrap().id, records[0].1.id);

        let mut out = Vec::new();
        let given = [parse_api_key("mine:enterprise").unwrap()];
        let records = register_keys(&store, &given, &mut out).await.unwrap();
        assert!(out.is_empty());
        assert_eq!(records[0].1.tier, Tier::Enterprise);
        assert_eq!(store.count_keys().await.unwrap(), 2);
    }
}
