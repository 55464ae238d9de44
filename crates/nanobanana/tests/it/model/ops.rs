//! The operations of the ledger's model-based test and how they are drawn.

use proptest::prelude::*;
use proptest::sample::Index;

use super::USERS;

#[derive(Debug, Clone)]
pub(super) enum Op {
    /// A new succeeded charge, credited; `repeat` credits it again.
    Charge {
        user: i64,
        credits: i64,
        repeat: bool,
    },
    Reserve {
        user: i64,
        cost: i64,
    },
    Start {
        generation: Index,
    },
    /// Settle with the current epoch, or a stale one.
    Settle {
        generation: Index,
        commit: bool,
        stale: bool,
    },
    RefundHold {
        charge: Index,
        credits: i64,
        reuse: Option<Index>,
    },
    RefundFinish {
        refund: Index,
        success: bool,
    },
    Adjust {
        user: i64,
        deduct: bool,
        credits: i64,
        reuse_key: Option<Index>,
    },
    /// Bonus credits (a promo, say); `repeat` gives them again under the same key.
    Bonus {
        user: i64,
        credits: i64,
        repeat: bool,
    },
    /// Takes back up to `credits` of unspent bonus (a referral reward of a refunded charge).
    TakeBack {
        user: i64,
        credits: i64,
    },
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        1 => (user.clone(), 1..60i64, any::<bool>()).prop_map(|(user, credits, repeat)| Op::Charge { user, credits, repeat }),
        3 => (user.clone(), 1..40i64).prop_map(|(user, cost)| Op::Reserve { user, cost }),
        2 => any::<Index>().prop_map(|generation| Op::Start { generation }),
        3 => (any::<Index>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(generation, commit, stale)| Op::Settle { generation, commit, stale }),
        1 => (any::<Index>(), 1..40i64, prop::option::weighted(0.2, any::<Index>()))
            .prop_map(|(charge, credits, reuse)| Op::RefundHold { charge, credits, reuse }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(refund, success)| Op::RefundFinish { refund, success }),
        1 => (user.clone(), any::<bool>(), 1..50i64, prop::option::weighted(0.2, any::<Index>()))
            .prop_map(|(user, deduct, credits, reuse_key)| Op::Adjust { user, deduct, credits, reuse_key }),
        2 => (user.clone(), 1..30i64, prop::bool::weighted(0.2))
            .prop_map(|(user, credits, repeat)| Op::Bonus { user, credits, repeat }),
        1 => (user, 1..30i64).prop_map(|(user, credits)| Op::TakeBack { user, credits }),
    ]
}
