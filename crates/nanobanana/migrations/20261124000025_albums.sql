-- Prompts with reference images: the Telegram file ids of a generation's references (the worker
-- downloads and stores them), and albums being gathered before they become one generation.

ALTER TABLE generations ADD COLUMN reference_file_ids TEXT[] NOT NULL DEFAULT '{}';

-- One row per (user, media_group_id). Items arrive one update each, in any order, possibly
-- repeated; the album is submitted as one generation once no item came for a short while.
CREATE TABLE album_drafts (
    user_id        BIGINT NOT NULL REFERENCES users (telegram_id),
    media_group_id TEXT NOT NULL,
    chat_id        BIGINT NOT NULL,
    -- [{"message_id": …, "file_id": …}, …]
    items          JSONB NOT NULL DEFAULT '[]',
    caption        TEXT,
    state          TEXT NOT NULL DEFAULT 'gathering' CHECK (state IN ('gathering', 'submitted')),
    due_at         TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, media_group_id)
);
CREATE INDEX album_drafts_due ON album_drafts (due_at) WHERE state = 'gathering';
