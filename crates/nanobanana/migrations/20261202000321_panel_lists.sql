-- The panel's Generations page (DESIGN §10): newest first a page at a time, and the failures of
-- the last days by reason. Without these, at 1,000,000 generations the first page sorted the
-- whole table (~470 ms) and the failures summary scanned it (~240 ms); with them, 3–11 ms and
-- 20–30 ms (README, "The operator's panel"). The first costs each generation one more entry at
-- the end of a btree; the second only failed ones.
CREATE INDEX generations_newest ON generations (created_at, id);
CREATE INDEX generations_failed ON generations (created_at) WHERE status = 'failed';
