//! Serves the in-memory Swagger Petstore (`runagent_conformance::petstore`)
//! on loopback, for schemathesis (`tests/contract/petstore3`).
//!
//! Usage: `petstore-demo [PORT]` (default: a free port). It prints
//! `listening on http://127.0.0.1:PORT/api/v3` once it accepts connections.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/api/v3", listener.local_addr()?);
    axum::serve(listener, runagent_conformance::petstore::router().into_make_service()).await
}
