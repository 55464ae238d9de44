-- The foreign keys from the journal to users and generations, and from generations to users,
-- sat on the ledger's hottest path: every journal row and every generation insert ran a
-- referential check that takes a FOR KEY SHARE lock on the referenced row (a WAL-logged tuple
-- lock). Together they cost the ledger about a fifth of its throughput (`loadgen ledger`).
-- The references hold without them: the movement statement writes a journal row only joined
-- to the user's balance row (which keeps its foreign key to users), a generation is inserted
-- only for a user the request path has just ensured, and users are never deleted (/deleteme
-- anonymizes). `nanobanana audit` checks them: a journal row without a balance row fails
-- `balance_vs_journal`, a dangling generation or journal reference fails `dangling_reference`.
-- The money guarantees themselves (non-negative balances, one reserve and one settlement per
-- generation, one topup per charge, one refund row per refund) stay in the database.
ALTER TABLE transactions
    DROP CONSTRAINT transactions_user_id_fkey,
    DROP CONSTRAINT transactions_generation_id_fkey;
ALTER TABLE generations DROP CONSTRAINT generations_user_id_fkey;
