//! The arithmetic of refunds (DESIGN §4 "Refunds"): the money a part of a charge is worth,
//! and the credits a part of its money is worth. Pure; integers only.

/// `amount × part / whole`, rounded down, at least 1 for a non-empty part.
pub fn proportion(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 || part >= whole {
        return amount;
    }
    let value = i128::from(amount) * i128::from(part) / i128::from(whole);
    i64::try_from(value).unwrap_or(amount).max(1)
}

/// Credits worth `refunded` of a charge of `amount` for `credits`, rounded up.
pub fn credits_worth(credits: i64, refunded: i64, amount: i64) -> i64 {
    if amount <= 0 || refunded >= amount {
        return credits;
    }
    let value = (i128::from(credits) * i128::from(refunded) + i128::from(amount) - 1) / i128::from(amount);
    i64::try_from(value).unwrap_or(credits)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_charge() {
        assert_eq!(proportion(10_000, 100, 100), 10_000);
        assert_eq!(proportion(10_000, 30, 100), 3_000);
        assert_eq!(proportion(100, 1, 1000), 1);
        assert_eq!(credits_worth(100, 10_000, 10_000), 100);
        assert_eq!(credits_worth(100, 3_333, 10_000), 34);
        assert_eq!(credits_worth(100, 1, 10_000), 1);
    }
}
