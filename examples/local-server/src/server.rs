//! Startup, serving and graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runagent_server::{
    CounterStore, DEFAULT_IDEMPOTENCY_TTL, IdempotencyStore, RateLimitConfig, RedisConnection, RedisCounterStore,
    RedisIdempotencyStore, RedisOptions, RedisStreamLog, RouterBuilder, ServerConfig, StreamLog,
};
use tokio_util::sync::CancellationToken;

use crate::api::LocalApi;
use crate::cli::{Cli, CliError, base_url, register_keys};
use crate::runner::Runner;
use crate::service::{Service, ServiceOptions};
use crate::store::{Store, StoreError};
use crate::stores::{DbCounters, DbIdempotency, DbKeys, server_tier};

/// The path prefix of every route.
pub const PREFIX: &str = "/v1";

/// How often expired streams are dropped from the replay registry.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A flag is wrong.
    #[error(transparent)]
    Config(#[from] CliError),
    /// The database could not be opened or used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--redis` is not a Redis URL.
    #[error("--redis: {0}")]
    Redis(String),
    /// The address could not be bound, or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl ServerError {
    /// The process exit status for this error: 2 for a usage mistake, 1
    /// for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::Config(_) => 2,
            _ => 1,
        }
    }
}

/// Where the stubs' counters and idempotency records live.
#[derive(Clone)]
pub enum SharedStores {
    /// In the service's database.
    Database,
    /// In Redis (`--redis`).
    Redis(RedisConnection),
}

/// The key prefix of everything runagent-local writes to Redis, so that a
/// Redis can be shared with other programs.
pub const REDIS_KEY_PREFIX: &str = "runagent:";

/// Opens `--redis` (connecting lazily: an instance starts while Redis is
/// down, and its requests get the stores' failure policies until it is
/// back).
pub fn open_redis(url: &str) -> Result<RedisConnection, ServerError> {
    RedisConnection::open(url, RedisOptions::default().key_prefix(REDIS_KEY_PREFIX))
        .map_err(|error| ServerError::Redis(error.to_string()))
}

/// The router of the API over `service`, with keys in the service's
/// database and counters and idempotency records where `stores` says.
pub fn router(service: Arc<Service>, keys: DbKeys, rate_limit: RateLimitConfig, stores: SharedStores) -> axum::Router {
    let store = service.store().clone();
    let (counters, idempotency): (Arc<dyn CounterStore>, Arc<dyn IdempotencyStore>) = match stores {
        SharedStores::Database => (
            Arc::new(DbCounters::new(store.clone())),
            Arc::new(DbIdempotency::new(store, DEFAULT_IDEMPOTENCY_TTL, service.instance_id())),
        ),
        // The runtime's default policies: counters fail open (each instance
        // counts in memory meanwhile), idempotency fails closed.
        SharedStores::Redis(redis) => (
            Arc::new(RedisCounterStore::new(redis.clone())),
            Arc::new(RedisIdempotencyStore::new(redis).with_ttl(DEFAULT_IDEMPOTENCY_TTL)),
        ),
    };
    RouterBuilder::new(LocalApi::new(service, PREFIX), keys)
        .config(ServerConfig::default().prefix(PREFIX).rate_limit(rate_limit))
        .counter_store(counters)
        .idempotency_store(idempotency)
        .build()
}

/// Runs the server until SIGINT or SIGTERM, then shuts it down gracefully.
/// `out` receives the development key (if one is made) and the `listening
/// on` line; logs go through `tracing`.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> Result<(), ServerError> {
    run_until(cli, out, shutdown_signal()).await
}

/// [`run`], stopping when `stop` completes instead of on a signal.
pub async fn run_until(
    cli: Cli,
    out: &mut (dyn Write + Send),
    stop: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let addr = cli.socket_addr()?;
    let store = Store::open(&cli.db).await?;
    let mut options = ServiceOptions { lease: cli.lease, ..ServiceOptions::default() };
    if let Some(id) = &cli.instance_id {
        options.instance_id = id.clone();
    }
    store.register_instance(&options.instance_id, i64::try_from(cli.lease.as_millis()).unwrap_or(i64::MAX)).await?;
    let keys = DbKeys::new(store.clone());
    for (key, record) in register_keys(&store, &cli.api_keys, out).await? {
        keys.remember(&key, runagent_server::Principal::new(record.id, server_tier(record.tier)));
    }

    let redis = cli.redis.as_deref().map(open_redis).transpose()?;
    if let Some(redis) = &redis
        && let Err(error) = redis.ping().await
    {
        // Not fatal: the stores reconnect by themselves.
        tracing::warn!(%error, "Redis does not answer yet; its stores fail per their policies until it does");
    }
    let runner = Runner::new(&cli.agents_dir);
    let service = match &redis {
        Some(redis) => {
            let log: Arc<dyn StreamLog> = Arc::new(RedisStreamLog::new(redis.clone(), options.streams));
            Service::with_stream_log(store.clone(), runner, options, log)
        }
        None => Service::new(store.clone(), runner, options),
    };
    let shared = redis.map_or(SharedStores::Database, SharedStores::Redis);
    // Takes over at once what dead instances (or this one's previous run)
    // left behind, then keeps the heartbeat and leases going.
    service.maintain_once().await?;
    service.start_background();
    let app = router(Arc::clone(&service), keys, cli.rate_limit_config(), shared);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Io { context: format!("cannot listen on {addr}"), source })?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|source| ServerError::Io { context: "cannot read the bound address".to_owned(), source })?;
    tracing::info!(
        db = %cli.db,
        redis = cli.redis.is_some(),
        instance_id = service.instance_id(),
        lease_seconds = cli.lease.as_secs_f64(),
        agents_dir = %cli.agents_dir.display(),
        "serving the RunAgent API"
    );
    // Scripts wait for this exact line to learn the port; failing to print
    // it is worth stopping over.
    writeln!(out, "listening on {}", base_url(local))
        .and_then(|()| out.flush())
        .map_err(|source| ServerError::Io { context: "cannot print the listening line".to_owned(), source })?;

    let sweeper = {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                service.sweep_streams();
            }
        })
    };

    let stopping = CancellationToken::new();
    let serve = {
        let stopping = stopping.clone();
        tokio::spawn(
            axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move { stopping.cancelled().await })
                .into_future(),
        )
    };
    tokio::pin!(stop);
    let mut serve = serve;
    tokio::select! {
        () = &mut stop => {}
        finished = &mut serve => {
            sweeper.abort();
            service.shutdown(Duration::ZERO).await;
            return match finished {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(ServerError::Io { context: "serving failed".into(), source }),
                Err(e) => Err(ServerError::Io {
                    context: "the server task failed".into(),
                    source: std::io::Error::other(e.to_string()),
                }),
            };
        }
    }

    // Stop accepting connections; requests in flight go on. Background work
    // (operations, streams, runs behind requests) gets the grace period,
    // then is stopped and recorded as failed; the connections it held then
    // end within moments.
    tracing::info!("shutting down");
    stopping.cancel();
    let grace = Duration::from_secs(cli.shutdown_timeout);
    service.shutdown(grace).await;
    if tokio::time::timeout(Duration::from_secs(2), &mut serve).await.is_err() {
        tracing::warn!("closing connections that did not finish in time");
        serve.abort();
    }
    sweeper.abort();
    // Fold SQLite's write-ahead log into the database file, so that the
    // file alone holds everything.
    if let Err(error) = store.checkpoint().await {
        tracing::warn!(%error, "could not checkpoint the database");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
