//! Starting an axum router on a listener and stopping it. Owns the shutdown signal that every
//! long-running handler (long polls, hangs) of a fake watches so that dropping a handle never
//! leaves a task behind waiting forever.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running server. Dropping it stops accepting connections and wakes long-running handlers.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: Shutdown,
}

/// A cloneable view of the shutdown signal, for handlers that wait.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self { tx: watch::channel(false).0 }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once the server is shutting down.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which is also a shutdown.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Which HTTP versions `serve_protocols` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    /// HTTP/1.1 only: a client that starts with the HTTP/2 preface is refused.
    pub http1_only: bool,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: requests one connection may carry at once.
    pub max_streams: u32,
}

impl RunningServer {
    /// Binds `listen` (port 0 allowed) and serves `router` until the returned handle is dropped.
    pub async fn start(listen: SocketAddr, router: Router, shutdown: Shutdown) -> anyhow::Result<Self> {
        let listener = Self::bind(listen).await?;
        Self::serve(listener, router, shutdown)
    }

    /// Binds first, for fakes that need their address before building the router.
    pub async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
        TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))
    }

    pub fn serve(listener: TcpListener, router: Router, shutdown: Shutdown) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("reading the bound address")?;
        let signal = shutdown.clone();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            let served =
                axum::serve(listener, app).with_graceful_shutdown(async move { signal.wait().await });
            if let Err(error) = served.await {
                tracing::error!(%error, "fake server stopped with an error");
            }
        });
        Ok(Self { addr, shutdown })
    }

    /// Like `serve`, but on one port both HTTP/1.1 and HTTP/2 with prior knowledge (h2c), as
    /// `protocols` allows, counting accepted connections in `accepted`. For the fake Gemini,
    /// whose clients may speak either and whose per-connection stream limit matters.
    pub fn serve_protocols(
        listener: TcpListener,
        router: Router,
        shutdown: Shutdown,
        protocols: Protocols,
        accepted: Arc<AtomicU64>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("reading the bound address")?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http2().max_concurrent_streams(protocols.max_streams);
        if protocols.http1_only {
            builder = builder.http1_only();
        }
        let signal = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = signal.wait() => break,
                };
                let stream = match stream {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors or similar: the next accept may succeed.
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                // Not `serve_connection_with_upgrades`: it ignores `http1_only`.
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let signal = signal.clone();
                tokio::spawn(async move {
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        served = conn.as_mut() => {
                            if let Err(error) = served {
                                tracing::debug!(%error, "connection ended with an error");
                            }
                        }
                        () = signal.wait() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        });
        Ok(Self { addr, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
