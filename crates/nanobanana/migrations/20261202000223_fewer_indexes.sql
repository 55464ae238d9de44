-- Write less per update (issue #16): `users` and `balances` carried a surrogate `id` with its own
-- index that no query reads (pg_stat_user_indexes after `loadgen intake --wrk`: 0 scans each,
-- while every update writes the users row and every prompt the balance row). Their natural keys
-- (`telegram_id`, `user_id`: NOT NULL UNIQUE, what every reference points at) identify the rows.
ALTER TABLE users DROP CONSTRAINT users_pkey;
ALTER TABLE users DROP COLUMN id;
ALTER TABLE users REPLICA IDENTITY USING INDEX users_telegram_id_key;

ALTER TABLE balances DROP CONSTRAINT balances_pkey;
ALTER TABLE balances DROP COLUMN id;
ALTER TABLE balances REPLICA IDENTITY USING INDEX balances_user_id_key;
