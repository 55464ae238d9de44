-- `loadgen overview`'s data: :users users registered over the last 90 days, :generations
-- generations spread over the same days (most succeeded, some failed, the newest still queued),
-- and a payment (RUB or Stars) from about one user in six, one in fifty of them refunded.
-- Set-based, so a million rows take seconds, not an hour of single inserts.
-- Placeholders: __USERS__, __GENERATIONS__ (replaced by the caller: psql-free).
INSERT INTO users (telegram_id, username, first_name, language, registered_at, last_seen_at)
SELECT 7000000000 + i, 'u' || i, 'User ' || i, CASE WHEN i % 3 = 0 THEN 'en' ELSE 'ru' END,
       r, LEAST(now(), r + (random() * (now() - r)))
FROM (SELECT i, now() - random() * interval '90 days' AS r
      FROM generate_series(1, __USERS__) AS i) s;

INSERT INTO generations (user_id, prompt, model, image_size, status, cost, charged, source_key, created_at,
                         started_at, completed_at, latency_ms, provider_cost_micro_usd, failure, error,
                         run_after, deadline)
SELECT 7000000000 + 1 + (hashint % __USERS__), 'a banana ' || i, m, '1K', st,
       c, CASE WHEN st = 'succeeded' THEN c END, 'seed:' || i, t,
       CASE WHEN st <> 'queued' THEN t + interval '1 second' END,
       CASE WHEN st IN ('succeeded', 'failed') THEN t + lat * interval '1 millisecond' END,
       CASE WHEN st = 'succeeded' THEN lat END,
       CASE WHEN st = 'succeeded' THEN CASE m WHEN 'pro' THEN 134000 WHEN 'nb21' THEN 34000 ELSE 20000 END END,
       CASE WHEN st = 'failed' THEN (ARRAY['failed_blocked', 'failed_refused', 'failed_no_image',
                                           'failed_retries', 'failed_deadline'])[1 + i % 5] END,
       CASE WHEN st = 'failed' THEN 'seeded failure' END,
       t, t + interval '15 minutes'
FROM (SELECT i, t, (i::int8 * 2654435761) % 2147483647 AS hashint,
             (ARRAY['nb21', 'nb21', 'nb21', 'pro', 'lite'])[1 + i % 5] AS m,
             CASE WHEN t > now() - interval '2 minutes' THEN 'queued'
                  WHEN i % 13 = 0 THEN 'failed' ELSE 'succeeded' END AS st,
             CASE (i % 5) WHEN 3 THEN 40 ELSE 10 END AS c,
             (4000 + (i::int8 * 7919) % 20000) AS lat
      FROM (SELECT i, now() - (i::float8 / __GENERATIONS__) * interval '90 days' AS t
            FROM generate_series(1, __GENERATIONS__) AS i) s) g;

INSERT INTO topups (id, user_id, provider, pack, currency, amount_minor, credits, status, created_at, paid_at)
SELECT md5('topup' || i)::uuid, u.telegram_id,
       CASE WHEN i % 4 = 0 THEN 'stars' ELSE 'yookassa' END,
       CASE WHEN i % 4 = 0 THEN 'xtr100' ELSE 'rub100' END,
       CASE WHEN i % 4 = 0 THEN 'XTR' ELSE 'RUB' END,
       CASE WHEN i % 4 = 0 THEN 80 ELSE 10000 END, 100, 'paid', p, p
FROM (SELECT telegram_id, row_number() OVER () AS i,
             registered_at + random() * (now() - registered_at) AS p
      FROM users WHERE telegram_id % 6 = 0 AND telegram_id >= 7000000000) u;

INSERT INTO payments (provider, payment_id, topup_id, user_id, currency, amount_minor, credits, status,
                      processed_at, created_at, updated_at)
SELECT provider, 'seed-' || id, id, user_id, currency, amount_minor, credits, 'succeeded', paid_at, paid_at, paid_at
FROM topups WHERE status = 'paid' AND pack IN ('xtr100', 'rub100');

INSERT INTO refunds (id, payment_id, user_id, credits, amount_minor, status, created_at, updated_at)
SELECT md5('refund' || p.id)::uuid, p.id, p.user_id, 50, p.amount_minor / 2, 'succeeded',
       p.created_at + interval '1 hour', p.created_at + interval '1 hour'
FROM payments p WHERE p.id % 50 = 0 AND p.payment_id LIKE 'seed-%';

ANALYZE users;
ANALYZE generations;
ANALYZE topups;
ANALYZE payments;
ANALYZE refunds;
