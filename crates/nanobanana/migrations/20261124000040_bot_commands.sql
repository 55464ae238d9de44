-- /deleteme: the user's personal data is erased and the moment recorded; every accounting row
-- (balances, transactions, payments, generations) stays. Cleared again when they come back.
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMPTZ;
