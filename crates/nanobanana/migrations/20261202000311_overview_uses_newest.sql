-- The overview's today (reports) reads generations by created_at. Migration 321 (the panel's
-- Generations page) indexes `generations (created_at, id)`, which serves that range as well, so
-- the BRIN index of migration 310 would only cost every generation's writes: dropped.
DROP INDEX IF EXISTS generations_created_brin;
