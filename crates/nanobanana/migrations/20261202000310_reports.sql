-- The operator's overview (issue #19, DESIGN §10): a daily rollup of closed days, so that a
-- 30-day overview reads ~30 small rows instead of a million generations. Owner: reports.
-- A day is a calendar day in the operator's time zone (`timezone`, OPERATOR_TIMEZONE); rows of
-- another zone are rebuilt. Today is always computed live, from the same queries.

CREATE TABLE report_days (
    day            DATE PRIMARY KEY,
    timezone       TEXT NOT NULL,
    -- Users registered that day, and distinct users with a succeeded payment that day.
    new_users      BIGINT NOT NULL,
    payers         BIGINT NOT NULL,
    -- Succeeded payments (by when they were credited) and succeeded refunds (the bot's and
    -- those made outside it), kopecks of RUB and Stars of XTR.
    rub_kopecks    BIGINT NOT NULL,
    stars          BIGINT NOT NULL,
    refund_kopecks BIGINT NOT NULL,
    refund_stars   BIGINT NOT NULL,
    refreshed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Generations created that day by model, status and failure ('' when none), with the
-- provider's recorded cost.
CREATE TABLE report_generations (
    day            DATE NOT NULL REFERENCES report_days (day) ON DELETE CASCADE,
    model          TEXT NOT NULL,
    status         TEXT NOT NULL,
    failure        TEXT NOT NULL,
    generations    BIGINT NOT NULL,
    cost_micro_usd BIGINT NOT NULL,
    PRIMARY KEY (day, model, status, failure)
);

-- Processing times (completed_at − created_at) of the day's succeeded generations as a
-- histogram: 100 ms buckets below a minute, 1 s buckets below ten minutes, one bucket above.
-- Percentiles of any window add these up (exact to the bucket).
CREATE TABLE report_latency (
    day         DATE NOT NULL REFERENCES report_days (day) ON DELETE CASCADE,
    bucket_ms   BIGINT NOT NULL,
    generations BIGINT NOT NULL,
    PRIMARY KEY (day, bucket_ms)
);

-- Today's generations, read live: a BRIN index costs the queue's updates next to nothing
-- (rows are appended in created_at order) and finds one day among 90 in a few pages.
CREATE INDEX generations_created_brin ON generations USING brin (created_at);
-- A day's and a window's new users. registered_at never changes, so updates of `users`
-- (last_seen_at on every message) stay HOT.
CREATE INDEX users_registered ON users (registered_at);
