//! The outbox (DESIGN §2, L3; §4 "Outbox sender"): Telegram requests written in the
//! transaction of the change that causes them (`enqueue`, `send_text`), the status message of
//! a generation (`status`), and the one active sender that delivers them (`sender`). The
//! sender is the only code that sends messages through the Bot API client.

mod sender;
pub mod status;

pub use sender::{enqueue, send_text, Sender};
