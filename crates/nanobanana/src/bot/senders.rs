//! The senders the fast path (`bot::fast`) remembers, so that their next prompts skip its read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;

/// What the fast path remembers of a user it served: what its one read found, so that their
/// next prompts skip it (the function checks it against the row it locks).
#[derive(Debug, Clone)]
pub struct Remembered {
    pub language: String,
    pub settings: Value,
}

/// The users the fast path remembers, at most `cap` (then it starts over: a miss costs one read).
pub struct Senders {
    map: Mutex<HashMap<i64, Arc<Remembered>>>,
    cap: usize,
}

impl Senders {
    pub fn new(cap: usize) -> Self {
        Self { map: Default::default(), cap }
    }

    fn locked(&self) -> MutexGuard<'_, HashMap<i64, Arc<Remembered>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, user: i64) -> Option<Arc<Remembered>> {
        self.locked().get(&user).cloned()
    }

    pub(super) fn remember(&self, user: i64, remembered: Remembered) {
        let mut map = self.locked();
        if map.len() >= self.cap {
            map.clear();
        }
        map.insert(user, Arc::new(remembered));
    }

    pub(super) fn forget(&self, user: i64) {
        self.locked().remove(&user);
    }
}
