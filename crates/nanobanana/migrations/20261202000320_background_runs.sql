-- The last pass of each background process that the operator watches on the panel's System
-- page (DESIGN §10): the reconcilers (YooKassa charges and refunds, held Stars refunds,
-- undelivered paid pictures), the deadline sweep, the model probe, and the audit (its last
-- result, from the panel's "run now" or `nanobanana audit`). One row per process, overwritten
-- by each pass. Owner: db::runs.
CREATE TABLE background_runs (
    name        TEXT PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ok          BOOLEAN NOT NULL,
    -- What the pass handled (rows reconciled, generations ended, violations found).
    handled     BIGINT NOT NULL DEFAULT 0,
    -- The error of a failed pass, or a short summary.
    detail      TEXT,
    -- When a pass last succeeded (kept across failed passes).
    last_ok_at  TIMESTAMPTZ,
    -- A structured result where there is one (the audit's report).
    report      JSONB
);
