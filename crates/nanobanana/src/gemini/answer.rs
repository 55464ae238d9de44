//! What an answer costs the worker's byte budget (`crate::budget`), and the gate it is read
//! under: once its headers arrive the call reserves the answer's share (from its
//! `Content-Length`, or the size asked for), then takes a `finishing` permit, and grows the
//! share while reading if the body outgrows it. The share stays held (in the caller's
//! reservation) while the answer is decoded, stored and turned into a preview.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::budget::Reservation;
use crate::domain::ImageSize;

/// How a call's answer is admitted (`Client::generate_gated`).
pub struct Gate<'a> {
    /// Answers read and processed at once.
    pub finishing: Arc<Semaphore>,
    /// The job's reservation: grown to hold the answer, shrunk to `base` plus the answer once
    /// the request (and its base64 copies of the references) is sent.
    pub memory: &'a mut Reservation,
    /// What the job keeps besides the answer (its references, in bytes).
    pub base: u64,
}

/// The answer's body, in bytes, expected for `size` (a PNG at up to 2 bytes a pixel, in base64,
/// plus Pro's two interim images at a sixteenth each), when no `Content-Length` says.
fn expected_body(size: Option<ImageSize>) -> u64 {
    pixels(size) * 2 * 4 / 3 * 9 / 8
}

/// Pixels of the largest picture of `size` over all aspect ratios (21:9 at 4K is 6336×2688).
fn pixels(size: Option<ImageSize>) -> u64 {
    let side: u64 = match size.unwrap_or(ImageSize::K1) {
        ImageSize::K1 => 1024,
        ImageSize::K2 => 2048,
        ImageSize::K4 => 4096,
    };
    side * side * 21 / 20
}

/// Bytes an answer with a body of `body` bytes takes at its peak, for a picture of `size`:
/// while it is classified, the body, the base64 text parsed out of it and the decoded image
/// (2.75 × body); afterwards the image, the copy stored, and the preview's decoded and
/// flattened bitmaps (RGBA then RGB: 7 bytes a pixel).
pub fn need(size: Option<ImageSize>, body: u64) -> u64 {
    let classify = body * 11 / 4;
    let preview = body * 3 / 2 + pixels(size) * 7;
    classify.max(preview)
}

/// `need` for an answer of unknown length (no `Content-Length`).
pub fn expected(size: Option<ImageSize>) -> u64 {
    need(size, expected_body(size))
}

/// Why the answer was not read.
#[derive(Debug, thiserror::Error)]
#[error("no room in the worker's memory budget for the answer before the call's deadline")]
pub struct NoRoom;

impl Gate<'_> {
    /// Before the body is read: holds `base` plus the answer's share for a body of `length`
    /// bytes (or the size's estimate), waiting until `deadline` at most; returns the rest of
    /// the request's share (its base64 copies are gone once the answer arrives).
    pub async fn admit(
        &mut self,
        size: Option<ImageSize>,
        length: Option<u64>,
        deadline: Instant,
    ) -> Result<(), NoRoom> {
        let answer = length.map_or_else(|| expected(size), |length| need(size, length));
        let total = self.base + answer;
        if !self.memory.try_grow_to(total) {
            tokio::time::timeout_at(deadline, self.memory.grow_to(total)).await.map_err(|_| NoRoom)?;
        }
        self.memory.shrink_to(total);
        Ok(())
    }

    /// While the body is read: `capacity` bytes are allocated for it so far. Grows the share
    /// if they outgrow it (waiting until `deadline` at most); holding the whole budget, the
    /// answer is read anyway (it runs alone).
    pub async fn account(
        &mut self,
        size: Option<ImageSize>,
        capacity: u64,
        deadline: Instant,
    ) -> Result<(), NoRoom> {
        let total = self.base + need(size, capacity);
        if total <= self.memory.held() || self.memory.try_grow_to(total) {
            return Ok(());
        }
        tokio::time::timeout_at(deadline, self.memory.grow_to(total)).await.map_err(|_| NoRoom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_grows_with_the_size_and_the_body() {
        const MIB: u64 = 1 << 20;
        let (k1, k4) = (expected(Some(ImageSize::K1)), expected(Some(ImageSize::K4)));
        assert!(k1 > 8 * MIB && k1 < 16 * MIB, "{k1}");
        assert!(k4 > 16 * k1 - MIB && k4 < 256 * MIB, "{k4}");
        assert_eq!(expected(None), k1, "no size asked: Gemini renders 1K");
        // A body far larger than expected counts for what it is.
        assert!(need(Some(ImageSize::K1), 100 * MIB) >= 275 * MIB);
    }
}
