//! A fake of the API for the tests of code that uses its client: the
//! generated router, serving only the operations a test implements (every
//! other one answers 501), on an ephemeral loopback port.
//!
//! The generated crate's `spawn_fake(api)` builds the router (accepting any
//! credential, without rate limits) and serves it with
//! [`LoopbackServer::start`]; a test points the real client at
//! [`LoopbackServer::base_url`].

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{Authenticator, Credential, Principal, Tier};

/// A router served on `127.0.0.1` on a port the system picked, until this
/// value is dropped.
#[derive(Debug)]
pub struct LoopbackServer {
    addr: SocketAddr,
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves `router` on an ephemeral loopback port, in a task of the
    /// current tokio runtime. `prefix` is the path the routes are mounted
    /// under (such as `/v1`), which [`base_url`](Self::base_url) ends with.
    pub async fn start(router: axum::Router, prefix: &str) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async move {
                // Dropping the sender stops the server as well as sending.
                let _ = stopped.await;
            };
            // An error here is a failure to accept, which only a test that
            // already lost its server would notice; the task just ends.
            let _ = axum::serve(listener, router.into_make_service()).with_graceful_shutdown(stop).await;
        });
        let base_url = format!("http://{addr}{}", prefix.trim_end_matches('/'));
        Ok(Self { addr, base_url, shutdown: Some(shutdown), task: Some(task) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give the client: `http://127.0.0.1:<port>` and the
    /// routes' prefix.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops serving and waits until the server has stopped (dropping the
    /// value stops it too, without waiting).
    pub fn stop(mut self) -> impl Future<Output = ()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self.task.take();
        async move {
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Connections kept alive by a client would hold a graceful shutdown
        // open; a test's fake must not outlive it.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// An authenticator that accepts any credential of any scheme, as the
/// principal `test` on the enterprise tier: a fake checks that credentials
/// are sent where the spec asks for them, not which ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyCredential;

impl Authenticator for AnyCredential {
    fn authenticate(&self, token: &str) -> impl Future<Output = Option<Principal>> + Send {
        std::future::ready((!token.is_empty()).then(|| Principal::new("test", Tier::Enterprise)))
    }

    fn authenticate_scheme(
        &self,
        _scheme: &str,
        credential: &Credential,
    ) -> impl Future<Output = Option<Principal>> + Send {
        let _ = credential;
        std::future::ready(Some(Principal::new("test", Tier::Enterprise)))
    }
}

#[cfg(test)]
mod tests {
    use super::LoopbackServer;

    async fn get(url: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = url.strip_prefix("http://").expect("an http URL");
        let (host, path) = url.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((url, "/".into()));
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok(text)
    }

    #[tokio::test]
    async fn serves_the_router_under_its_prefix_until_dropped() {
        let router = axum::Router::new()
            .nest("/v1", axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" })));
        let server = LoopbackServer::start(router, "/v1/").await.expect("binds a loopback port");
        assert!(server.addr().ip().is_loopback());
        assert_eq!(server.base_url(), format!("http://{}/v1", server.addr()));
        let answer = get(&format!("{}/ping", server.base_url())).await.expect("the server answers");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");
        let addr = server.addr();
        server.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after stop");
    }
}
