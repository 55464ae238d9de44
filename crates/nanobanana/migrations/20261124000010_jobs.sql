-- Generations as jobs (DESIGN §3, §4 "Worker"): when a job may run, how often it was tried,
-- when it must be over, and who holds its lease until when. `lease_epoch` (foundation) fences
-- every write of the holder; these columns say who may claim next.
--
-- Defaults keep every existing insert valid: a new generation is due now, and its deadline is
-- 15 minutes away (GENERATION_DEADLINE_SECS' default) unless the inserter sets one.
ALTER TABLE generations
    ADD COLUMN run_after    TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN deadline     TIMESTAMPTZ NOT NULL DEFAULT now() + interval '15 minutes',
    ADD COLUMN locked_until TIMESTAMPTZ,
    ADD COLUMN worker_id    TEXT,
    -- The error of the last retryable failure; `error` stays the final one.
    ADD COLUMN last_error   TEXT;

-- The claim: due queued jobs in `run_after` order ...
CREATE INDEX generations_due ON generations (run_after) WHERE status = 'queued';
-- ... and processing jobs whose lease has expired (a dead or stalled worker's).
CREATE INDEX generations_leased ON generations (locked_until) WHERE status = 'processing';
-- The deadline sweep: non-terminal jobs by deadline.
CREATE INDEX generations_deadline ON generations (deadline) WHERE status IN ('queued', 'processing');
