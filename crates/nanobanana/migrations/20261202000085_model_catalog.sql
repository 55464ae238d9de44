-- The model catalog (DESIGN §10): models are configuration, probed against Gemini, priced per
-- size, and a picture smaller than the size bought is charged as the size delivered.
--
-- `model` keeps our stable key (rows of the previous release keep 'pro' and 'flash', which the
-- catalog maps); `model_id` is Google's id the generation was created with (NULL before).
-- `charged` is what the one settlement (`commit`) charged: at most `cost`, the rest released
-- in the same journal row (see the ledger); NULL for rows committed before this migration (they
-- were charged their cost) and for generations not committed. `delivered_size` is the size the
-- delivered picture measured when it was smaller than the size bought.
ALTER TABLE generations
    ADD COLUMN model_id       TEXT,
    ADD COLUMN charged        BIGINT,
    ADD COLUMN delivered_size TEXT,
    ADD CONSTRAINT generations_charged_within_cost
        CHECK (charged IS NULL OR (charged > 0 AND charged <= cost));

-- Google ids that `GET /v1beta/models` stopped listing (or that answered 404 NOT_FOUND): hidden
-- from /settings and refused while a row is here; the row's insert and its delete are what tell
-- the admins, once each. Owner: jobs::availability.
CREATE TABLE unavailable_models (
    model_id TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    since    TIMESTAMPTZ NOT NULL DEFAULT now()
);
