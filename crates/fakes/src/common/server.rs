//! Starting an axum router on a listener and stopping it. Owns the shutdown signal that every
//! long-running handler (long polls, hangs) of a fake watches so that dropping a handle never
//! leaves a task behind waiting forever.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
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
