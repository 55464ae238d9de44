-- Issue 18 (DESIGN §10 "Editing is a conversation", "Variants and cancel", "Styles").
--
-- An edit continues the Gemini conversation of the generation it edits (`parent_id`); the
-- model's turn of a succeeded generation is an object in storage (`turn_key`, erased with its
-- pictures by `/deleteme`). Variants of one request share `request_id` (each still its own
-- generation: its own reserve and its own single settlement). `style` is the preset applied to
-- the user's words (`prompt` stays their words; the worker applies the template).
ALTER TABLE generations
    ADD COLUMN parent_id  UUID REFERENCES generations (id),
    ADD COLUMN turn_key   TEXT,
    ADD COLUMN request_id UUID,
    ADD COLUMN variants   SMALLINT NOT NULL DEFAULT 1 CHECK (variants BETWEEN 1 AND 4),
    ADD COLUMN style      TEXT;

CREATE INDEX generations_request ON generations (request_id) WHERE request_id IS NOT NULL;

-- Which generation a message in a chat shows: a reply to it edits that generation.
CREATE INDEX outbox_delivered_message ON outbox (chat_id, message_id) WHERE delivers IS NOT NULL;
