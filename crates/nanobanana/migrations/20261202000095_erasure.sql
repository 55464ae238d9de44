-- `/deleteme` erases a user's stored pictures (originals, previews, reference photos): the
-- request marks their finished generations in the same transaction as the rest of the erasure,
-- and an eraser deletes the objects and records when it did (so a crash between the two only
-- repeats a deletion).
ALTER TABLE generations
    ADD COLUMN erase_requested_at TIMESTAMPTZ,
    ADD COLUMN erased_at          TIMESTAMPTZ;

CREATE INDEX generations_to_erase ON generations (erase_requested_at)
    WHERE erase_requested_at IS NOT NULL AND erased_at IS NULL;
