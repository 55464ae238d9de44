//! The one way the worker calls Gemini: the client behind the global limits. A 429 that says
//! how long to wait slows every process down for that long. Never retries by itself: what to
//! do with an outcome is the worker's decision.

use tokio::sync::OwnedSemaphorePermit;

use super::answer::Gate;
use super::client::Client;
use super::limits::{LimitError, Limits};
use super::outcome::Reply;
use super::request::Request;

#[derive(Debug, Clone)]
pub struct Gateway {
    client: Client,
    limits: Limits,
}

impl Gateway {
    pub fn new(client: Client, limits: Limits) -> Self {
        Self { client, limits }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Waits for a slot (bounded), calls Gemini, and shares a 429's delay. `Err` means no call
    /// was made: requeue the job (after `retry_after` when given).
    pub async fn generate(&self, request: &Request) -> Result<Reply, LimitError> {
        Ok(self.generate_gated(request, None).await?.0)
    }

    /// `generate` with the answer read under a permit of `gate` (`Client::generate_gated`),
    /// returned to be held while the answer is processed.
    pub async fn generate_gated(
        &self,
        request: &Request,
        gate: Option<Gate<'_>>,
    ) -> Result<(Reply, Option<OwnedSemaphorePermit>), LimitError> {
        // Boxed: the call is what waits; the limiter's Redis round trips need not be carried in
        // every waiting call's state.
        let permit = Box::pin(self.limits.acquire()).await?;
        let (reply, gated) = self.client.generate_gated(request, gate).await;
        drop(permit);
        if let Some(after) = reply.outcome.retry_after() {
            if let Err(error) = Box::pin(self.limits.slow_down(after)).await {
                // The call's outcome still stands; only the other processes' pacing is lost.
                tracing::warn!(%error, delay_ms = after.as_millis() as u64, "could not share a Gemini 429 delay");
            }
        }
        Ok((reply, gated))
    }
}
