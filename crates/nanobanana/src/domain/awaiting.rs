//! Conversation states (DESIGN §4 "Conversation state"): what the bot expects from a user next,
//! instead of taking their text as a prompt. Stored on the user's row as a name and optional
//! JSON data (`users.awaiting`, `awaiting_data`), in the wire format below, which states
//! already stored keep.

use serde_json::{json, Value};
use uuid::Uuid;

/// A state the user is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaiting {
    /// The e-mail or phone for a 54-FZ receipt, before paying for the pack with this id.
    ReceiptContact { pack: String },
    /// The instruction editing this result of theirs (after ✏️).
    Edit { generation: Uuid },
    /// The confirmation of `/deleteme`.
    DeleteConfirmation,
    /// The next prompt gets this style preset (`/styles`, "next prompt").
    Styled { style: String },
}

/// Which state, without its data: what a caller takes or checks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwaitingKind {
    ReceiptContact,
    Edit,
    DeleteConfirmation,
    Styled,
}

impl AwaitingKind {
    /// The name stored in `users.awaiting`.
    pub fn name(self) -> &'static str {
        match self {
            AwaitingKind::ReceiptContact => "receipt_contact",
            AwaitingKind::Edit => "edit",
            AwaitingKind::DeleteConfirmation => "deleteme",
            AwaitingKind::Styled => "styled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            AwaitingKind::ReceiptContact,
            AwaitingKind::Edit,
            AwaitingKind::DeleteConfirmation,
            AwaitingKind::Styled,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

impl Awaiting {
    pub fn kind(&self) -> AwaitingKind {
        match self {
            Awaiting::ReceiptContact { .. } => AwaitingKind::ReceiptContact,
            Awaiting::Edit { .. } => AwaitingKind::Edit,
            Awaiting::DeleteConfirmation => AwaitingKind::DeleteConfirmation,
            Awaiting::Styled { .. } => AwaitingKind::Styled,
        }
    }

    /// The data stored beside the name.
    pub fn data(&self) -> Option<Value> {
        match self {
            Awaiting::ReceiptContact { pack } => Some(json!({ "pack": pack })),
            Awaiting::Edit { generation } => Some(json!({ "generation": generation })),
            Awaiting::DeleteConfirmation => None,
            Awaiting::Styled { style } => Some(json!({ "style": style })),
        }
    }

    /// The state stored as `name` and `data`; `None` for a name or data this version cannot
    /// read (an unknown state reads as none: the text is a prompt).
    pub fn parse(name: &str, data: Option<&Value>) -> Option<Self> {
        let field = |key: &str| data.and_then(|d| d.get(key)).and_then(Value::as_str);
        Some(match AwaitingKind::parse(name)? {
            AwaitingKind::ReceiptContact => {
                Awaiting::ReceiptContact { pack: field("pack").unwrap_or("").to_owned() }
            }
            AwaitingKind::Edit => Awaiting::Edit { generation: Uuid::parse_str(field("generation")?).ok()? },
            AwaitingKind::DeleteConfirmation => Awaiting::DeleteConfirmation,
            AwaitingKind::Styled => Awaiting::Styled { style: field("style")?.to_owned() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_stored_form() {
        let states = [
            Awaiting::ReceiptContact { pack: "rub_100".into() },
            Awaiting::Edit { generation: Uuid::now_v7() },
            Awaiting::DeleteConfirmation,
            Awaiting::Styled { style: "anime".into() },
        ];
        for state in states {
            let (name, data) = (state.kind().name(), state.data());
            assert_eq!(Awaiting::parse(name, data.as_ref()), Some(state.clone()), "{name}");
            assert_eq!(AwaitingKind::parse(name), Some(state.kind()));
        }
    }

    #[test]
    fn the_stored_format_is_the_one_already_in_the_database() {
        let generation = Uuid::now_v7();
        let stored = json!({ "generation": generation.to_string() });
        assert_eq!(Awaiting::parse("edit", Some(&stored)), Some(Awaiting::Edit { generation }));
        let stored = json!({ "pack": "stars_80" });
        assert_eq!(
            Awaiting::parse("receipt_contact", Some(&stored)),
            Some(Awaiting::ReceiptContact { pack: "stars_80".into() })
        );
        assert_eq!(Awaiting::parse("deleteme", None), Some(Awaiting::DeleteConfirmation));
    }

    #[test]
    fn unknown_or_unreadable_states_read_as_none() {
        assert_eq!(Awaiting::parse("edit_prompt", None), None);
        assert_eq!(Awaiting::parse("edit", None), None);
        assert_eq!(Awaiting::parse("edit", Some(&json!({ "generation": "not-a-uuid" }))), None);
        assert_eq!(AwaitingKind::parse(""), None);
    }
}
