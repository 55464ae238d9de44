-- One owner per table (DESIGN §2), with no extra round trip on the hot path.
--
-- A user's zero balance row is created by the database with the user, so the `users` owner
-- (db::users) never writes `balances`, whose only writer is the ledger. An AFTER INSERT row
-- trigger fires only for a row really inserted (not for ON CONFLICT DO UPDATE).
CREATE FUNCTION users_open_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO balances (user_id) VALUES (NEW.telegram_id) ON CONFLICT (user_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER users_open_balance AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_open_balance();

-- Users created before this migration all have their balance row; make sure.
INSERT INTO balances (user_id) SELECT telegram_id FROM users ON CONFLICT (user_id) DO NOTHING;

-- A generation's status message is queued by the outbox (its owner) before the generation
-- row (owned by jobs) is inserted with a link to it, in the same transaction: the message's
-- reference to its generation is checked at commit.
ALTER TABLE outbox DROP CONSTRAINT outbox_status_of_fkey;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_of_fkey
    FOREIGN KEY (status_of) REFERENCES generations (id) DEFERRABLE INITIALLY DEFERRED;
