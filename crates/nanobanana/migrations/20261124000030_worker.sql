-- The generation worker (DESIGN §3 `generations`, §4 "Worker"): what a finished generation
-- produced and cost, what Telegram calls its delivered files, and the service-wide pause that
-- a spent daily quota or an invalid key sets.

ALTER TABLE generations
    -- Storage keys of the original and of the JPEG preview sent as the photo.
    ADD COLUMN result_key              TEXT,
    ADD COLUMN preview_key             TEXT,
    -- Telegram's file_id of the delivered photo (largest size) and of the original document.
    ADD COLUMN file_id                 TEXT,
    ADD COLUMN document_file_id        TEXT,
    -- Gemini's usageMetadata of the successful call, its provider cost and latency.
    ADD COLUMN usage                   JSONB,
    ADD COLUMN provider_cost_micro_usd BIGINT CHECK (provider_cost_micro_usd >= 0),
    ADD COLUMN latency_ms              BIGINT CHECK (latency_ms >= 0);

-- Service-wide flags, one row per name. `generation_pause`: generation is paused for everyone
-- (the bot refuses new requests) until a probe call succeeds; `probe_after` is when a worker
-- may try the next probe.
CREATE TABLE service_state (
    name        TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    since       TIMESTAMPTZ NOT NULL DEFAULT now(),
    probe_after TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
