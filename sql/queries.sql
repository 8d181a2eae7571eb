-- Every query the service runs, by name. A block starts with "-- name --",
-- then one comment line saying what it is for, then the SQL.
-- Parameters are always $1, $2, ...: nothing is ever concatenated in.

-- fetch_number --
-- The aggregate of one number, for a lookup that the Bloom filter and cache could not answer
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key
FROM numbers
WHERE e164 = $1;

-- count_numbers --
-- How many numbers are known, to size the Bloom filter before filling it
SELECT count(*) FROM numbers;

-- all_number_keys --
-- Every known number, streamed into the Bloom filter at start-up
SELECT e164 FROM numbers;

-- most_reported_numbers --
-- The numbers most likely to be looked up, to warm the hot cache
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key
FROM numbers
ORDER BY reporters DESC, e164 DESC
LIMIT $1;

-- claim_idempotency_key --
-- The earlier report made with this Idempotency-Key, if any
SELECT id, e164, channel, category, content, received_at, request_hash
FROM reports
WHERE idempotency_key = $1;

-- ensure_number --
-- Create the aggregate row of a number an analyst decides about before anyone reported it
INSERT INTO numbers (e164) VALUES ($1)
ON CONFLICT (e164) DO NOTHING;

-- Reports, written a group at a time (Store._write_group) -----------------
-- Rows are locked in one order (numbers by e164, keys, reporter days) so that
-- groups written at the same time never wait on each other in a cycle.

-- ensure_numbers --
-- Create the aggregate rows of the numbers of a group ($1: distinct, in e164 order); returns those created
INSERT INTO numbers (e164)
SELECT e164 FROM unnest($1::text[]) WITH ORDINALITY AS t(e164, n)
ORDER BY n
ON CONFLICT (e164) DO NOTHING
RETURNING e164;

-- lock_numbers --
-- The aggregates of a group's numbers, locked for this transaction in e164 order
SELECT n.e164, n.status, n.reports, n.reporters, n.categories, n.first_reported_at,
       n.last_reported_at, n.weights, n.weights_at, n.heat_key, n.cleared_at,
       EXISTS (SELECT 1 FROM protected_numbers p WHERE p.e164 = n.e164) AS protected
FROM numbers n
WHERE n.e164 = ANY($1::text[])
ORDER BY n.e164
FOR UPDATE OF n;

-- insert_reports --
-- Number a group's reports in order, keep those with an Idempotency-Key (not counted yet; none whose key is taken), and read each one's reporter state (read after the numbers were locked: it is current)
WITH input AS MATERIALIZED (
    SELECT t.*, nextval('reports_id_seq') AS id
    FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $7::text[], $8::bytea[], $9::text[])
         WITH ORDINALITY AS t(e164, reporter_hash, channel, category, content, received_at,
                              idempotency_key, request_hash, reporter_masked, n)
), kept AS (
    INSERT INTO reports (id, e164, reporter_hash, channel, category, content, received_at,
                         idempotency_key, request_hash, counted, reporter_masked)
    OVERRIDING SYSTEM VALUE
    SELECT id, e164, reporter_hash, channel, category, content, received_at, idempotency_key,
           request_hash, false, reporter_masked
    FROM input
    WHERE idempotency_key IS NOT NULL
    ORDER BY idempotency_key, n
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
SELECT i.id, i.idempotency_key IS NULL OR k.id IS NOT NULL AS kept,
       r.first_reported_at, r.category, r.counted_at
FROM input i
LEFT JOIN kept k ON k.id = i.id
LEFT JOIN number_reporters r ON r.e164 = i.e164 AND r.reporter_hash = i.reporter_hash
ORDER BY i.n;

-- lock_reporter_days --
-- The numbers each reporter counted on each day (0 for a day not seen yet), locked so that the daily cap is applied in memory
INSERT INTO reporter_days (reporter_hash, day, numbers)
SELECT reporter_hash, day, 0
FROM unnest($1::bytea[], $2::date[]) AS t(reporter_hash, day)
ORDER BY reporter_hash, day
ON CONFLICT (reporter_hash, day) DO UPDATE SET numbers = reporter_days.numbers
RETURNING reporter_hash, day, numbers;

-- save_report_group --
-- Write what a group of reports did (computed under the locks): reports without a key, counted flags, reporters, aggregates, daily counts, one change-log row per report and one wake-up
WITH new_reports AS (
    INSERT INTO reports (id, e164, reporter_hash, channel, category, content, received_at,
                         request_hash, counted, reporter_masked)
    OVERRIDING SYSTEM VALUE
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[], $8::bytea[], $9::boolean[], $10::text[])
), counted AS (
    UPDATE reports SET counted = true WHERE id = ANY($11::bigint[])
), reporters AS (
    INSERT INTO number_reporters (e164, reporter_hash, first_reported_at, category, counted_at)
    SELECT * FROM unnest($12::text[], $13::bytea[], $14::timestamptz[], $15::text[],
                         $16::timestamptz[])
    ON CONFLICT (e164, reporter_hash) DO UPDATE
    SET category = EXCLUDED.category, counted_at = EXCLUDED.counted_at
), aggregates AS (
    UPDATE numbers n
    SET reports = a.reports, reporters = a.reporters, categories = a.categories::jsonb,
        first_reported_at = a.first_reported_at, last_reported_at = a.last_reported_at,
        weights = a.weights::jsonb, weights_at = a.weights_at, heat_key = a.heat_key,
        verdict = a.verdict, verdict_changes_at = a.verdict_changes_at, updated_at = now()
    FROM unnest($17::text[], $18::integer[], $19::integer[], $20::text[], $21::timestamptz[],
                $22::timestamptz[], $23::text[], $24::timestamptz[], $25::float8[], $26::text[],
                $27::timestamptz[])
         AS a(e164, reports, reporters, categories, first_reported_at, last_reported_at, weights,
              weights_at, heat_key, verdict, verdict_changes_at)
    WHERE n.e164 = a.e164
), unused AS (
    DELETE FROM numbers WHERE e164 = ANY($28::text[])
), days AS (
    UPDATE reporter_days d SET numbers = c.numbers
    FROM unnest($29::bytea[], $30::date[], $31::integer[]) AS c(reporter_hash, day, numbers)
    WHERE d.reporter_hash = c.reporter_hash AND d.day = c.day AND c.numbers > 0
), unused_days AS (
    DELETE FROM reporter_days d
    USING unnest($29::bytea[], $30::date[], $31::integer[]) AS c(reporter_hash, day, numbers)
    WHERE d.reporter_hash = c.reporter_hash AND d.day = c.day AND c.numbers = 0
), logged AS (
    INSERT INTO changes (e164, kind)
    SELECT e164, $33 FROM unnest($32::text[]) WITH ORDINALITY AS t(e164, n)
    ORDER BY n
    RETURNING seq
)
SELECT array_agg(seq ORDER BY seq) AS seqs, pg_current_xact_id()::text::bigint AS txid,
       CASE WHEN count(*) > 0
            THEN pg_notify('reputation_changes', max(seq)::text) END AS notified
FROM logged;

-- append_change --
-- Record that the answer for a number changed and wake the nodes at commit (one wake-up per transaction: the payload is empty, so PostgreSQL folds them)
WITH appended AS (
    INSERT INTO changes (e164, kind) VALUES ($1, $2)
    RETURNING seq, txid
)
SELECT seq, txid, pg_notify('reputation_changes', '') FROM appended;

-- log_change --
-- Record that the answer for a number changed, in a transaction that sends its own NOTIFY (or none)
INSERT INTO changes (e164, kind) VALUES ($1, $2)
RETURNING seq;

-- transaction_status --
-- Did a transaction commit? (for a write whose COMMIT got no answer: committed, aborted, in progress)
SELECT pg_xact_status($1::text::xid8);

-- get_secret --
-- A secret generated by the server, created on first use
WITH created AS (
    INSERT INTO server_secrets (name, value) VALUES ($1, $2)
    ON CONFLICT (name) DO NOTHING
    RETURNING value
)
SELECT value FROM created
UNION ALL
SELECT value FROM server_secrets WHERE name = $1
LIMIT 1;

-- ping --
-- Does the database answer (readiness)
SELECT 1;

-- fetch_numbers --
-- The aggregates of several numbers at once, for the misses of a batch lookup
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key
FROM numbers
WHERE e164 = ANY($1::text[]);

-- API keys ----------------------------------------------------------------

-- create_api_key --
-- Keep a new API key (its hash only), returning its row without the hash
INSERT INTO api_keys (name, role, key_hash, key_prefix, rate_limit)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, role, key_prefix, rate_limit, created_at, revoked_at;

-- list_api_keys --
-- Every API key, revoked ones included, without the hashes
SELECT id, name, role, key_prefix, rate_limit, created_at, revoked_at
FROM api_keys
ORDER BY id;

-- revoke_api_key --
-- Revoke a key; returns its row (revoked_at unchanged if it was revoked already)
UPDATE api_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1
RETURNING id, name, role, key_prefix, rate_limit, created_at, revoked_at;

-- active_api_keys --
-- The keys that may be used, with their hashes, loaded by every node
SELECT id, name, role, key_hash, key_prefix, rate_limit, created_at, revoked_at
FROM api_keys
WHERE revoked_at IS NULL;

-- notify_api_keys --
-- Wake every node to re-read the API keys (delivered at commit)
SELECT pg_notify('reputation_api_keys', '');

-- ---------------------------------------------------------------------------
-- Verdicts: evidence, statuses, audit trail, review queue, appeals, protection
-- ---------------------------------------------------------------------------

-- lock_number --
-- A number's aggregate, locked for this transaction, with one reporter's state ($2, may be null)
SELECT n.e164, n.status, n.reports, n.reporters, n.categories, n.first_reported_at,
       n.last_reported_at, n.weights, n.weights_at, n.heat_key, n.cleared_at, n.verdict,
       n.verdict_changes_at, n.open_appeal_id,
       r.first_reported_at AS reporter_first_reported_at,
       r.category AS reporter_category, r.counted_at AS reporter_counted_at,
       EXISTS (SELECT 1 FROM protected_numbers p WHERE p.e164 = n.e164) AS protected
FROM numbers n
LEFT JOIN number_reporters r ON r.e164 = n.e164 AND r.reporter_hash = $2
WHERE n.e164 = $1
FOR UPDATE OF n;

-- number_contributions --
-- The counted contribution of each reporter of a number (of those first seen after $2, if given)
SELECT category, counted_at
FROM number_reporters
WHERE e164 = $1 AND counted_at IS NOT NULL
  AND ($2::timestamptz IS NULL OR first_reported_at > $2);

-- save_number_status --
-- Write an analyst's status with the evidence and verdict it leads to
UPDATE numbers
SET status = $2, cleared_at = $3, weights = $4, weights_at = $5, verdict = $6,
    verdict_changes_at = $7, updated_at = now()
WHERE e164 = $1;

-- save_verdict --
-- Store a re-judged verdict and when decay next changes it
UPDATE numbers SET verdict = $2, verdict_changes_at = $3 WHERE e164 = $1;

-- insert_audit --
-- Keep who changed what about a number, from what, to what, and why
INSERT INTO audit_log (e164, action, actor, from_value, to_value, note, at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, e164, action, actor, from_value, to_value, note, at;

-- number_history --
-- A number's audit trail, oldest first, after the entry id $2
SELECT id, e164, action, actor, from_value, to_value, note, at
FROM audit_log
WHERE e164 = $1 AND id > $2
ORDER BY id
LIMIT $3;

-- number_reports --
-- The reports behind a number, newest first, before the report id $2
SELECT id, e164, reporter_hash, reporter_masked, channel, category, content, received_at,
       counted
FROM reports
WHERE e164 = $1 AND id < $2
ORDER BY id DESC
LIMIT $3;

-- queue_by_reporters --
-- Review queue, most distinct reporters first, after the cursor ($5, $6)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, open_appeal_id
FROM numbers
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR categories ? $2)
  AND ($3::text IS NULL OR verdict = $3)
  AND (NOT $4::boolean OR open_appeal_id IS NOT NULL)
  AND (reporters, e164) < ($5::int, $6::text)
ORDER BY reporters DESC, e164 DESC
LIMIT $7;

-- queue_by_reporters_reviewed --
-- Same, among the numbers an analyst touched or under appeal (their own small index)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, open_appeal_id
FROM numbers
WHERE (status <> 'reported' OR open_appeal_id IS NOT NULL)
  AND ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR categories ? $2)
  AND ($3::text IS NULL OR verdict = $3)
  AND (NOT $4::boolean OR open_appeal_id IS NOT NULL)
  AND (reporters, e164) < ($5::int, $6::text)
ORDER BY reporters DESC, e164 DESC
LIMIT $7;

-- queue_by_recent --
-- Review queue, most recently reported first (never reported last), after the cursor ($5, $6)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, open_appeal_id
FROM numbers
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR categories ? $2)
  AND ($3::text IS NULL OR verdict = $3)
  AND (NOT $4::boolean OR open_appeal_id IS NOT NULL)
  AND (coalesce(last_reported_at, '-infinity'), e164) < ($5::timestamptz, $6::text)
ORDER BY coalesce(last_reported_at, '-infinity') DESC, e164 DESC
LIMIT $7;

-- queue_by_recent_reviewed --
-- Same, among the numbers an analyst touched or under appeal (their own small index)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, open_appeal_id
FROM numbers
WHERE (status <> 'reported' OR open_appeal_id IS NOT NULL)
  AND ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR categories ? $2)
  AND ($3::text IS NULL OR verdict = $3)
  AND (NOT $4::boolean OR open_appeal_id IS NOT NULL)
  AND (coalesce(last_reported_at, '-infinity'), e164) < ($5::timestamptz, $6::text)
ORDER BY coalesce(last_reported_at, '-infinity') DESC, e164 DESC
LIMIT $7;

-- queue_by_heat --
-- Review queue, most active now first, after the cursor ($5, $6)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, open_appeal_id
FROM numbers
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR categories ? $2)
  AND ($3::text IS NULL OR verdict = $3)
  AND (NOT $4::boolean OR open_appeal_id IS NOT NULL)
  AND (heat_key, e164) < ($5::float8, $6::text)
ORDER BY heat_key DESC, e164 DESC
LIMIT $7;

-- queue_by_heat_reviewed --
-- Same, among the numbers an analyst touched or under appeal (their own small index)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, open_appeal_id
FROM numbers
WHERE (status <> 'reported' OR open_appeal_id IS NOT NULL)
  AND ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR categories ? $2)
  AND ($3::text IS NULL OR verdict = $3)
  AND (NOT $4::boolean OR open_appeal_id IS NOT NULL)
  AND (heat_key, e164) < ($5::float8, $6::text)
ORDER BY heat_key DESC, e164 DESC
LIMIT $7;

-- due_verdicts --
-- Numbers whose stored verdict decay has changed by $1, oldest due first, locked for the sweep
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict,
       EXISTS (SELECT 1 FROM protected_numbers p WHERE p.e164 = numbers.e164) AS protected
FROM numbers
WHERE verdict_changes_at <= $1
ORDER BY verdict_changes_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- numbers_after --
-- A batch of numbers after $1, locked, to re-judge them all once the verdict settings change
-- (a number a report holds is skipped: that report stores its verdict itself)
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key, verdict, verdict_changes_at,
       EXISTS (SELECT 1 FROM protected_numbers p WHERE p.e164 = numbers.e164) AS protected
FROM numbers
WHERE e164 > $1
ORDER BY e164
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- try_sweep_lock --
-- Let one node at a time sweep (held until the transaction ends)
SELECT pg_try_advisory_xact_lock($1);

-- get_state --
-- A fact the service keeps about itself
SELECT value FROM server_state WHERE name = $1;

-- set_state --
-- Keep a fact the service keeps about itself
INSERT INTO server_state (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;

-- insert_appeal --
-- Open an appeal; nothing when the number already has an open one
INSERT INTO appeals (e164, contact, reason, submitted_by, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (e164) WHERE status = 'open' DO NOTHING
RETURNING id, e164, contact, reason, status, submitted_by, created_at, resolved_by,
          resolved_at, resolution_note;

-- open_appeal --
-- The open appeal of a number, if any
SELECT id, e164, contact, reason, status, submitted_by, created_at, resolved_by,
       resolved_at, resolution_note
FROM appeals
WHERE e164 = $1 AND status = 'open';

-- set_open_appeal --
-- Show (or stop showing) a number's open appeal in the review queue
UPDATE numbers SET open_appeal_id = $2 WHERE e164 = $1;

-- lock_appeal --
-- One appeal, locked to resolve it
SELECT id, e164, contact, reason, status, submitted_by, created_at, resolved_by,
       resolved_at, resolution_note
FROM appeals
WHERE id = $1
FOR UPDATE;

-- resolve_appeal --
-- Close an appeal with the analyst's decision
UPDATE appeals
SET status = $2, resolved_by = $3, resolved_at = $4, resolution_note = $5
WHERE id = $1
RETURNING id, e164, contact, reason, status, submitted_by, created_at, resolved_by,
          resolved_at, resolution_note;

-- list_appeals --
-- Appeals in one status (or all), oldest first, after the appeal id $2
SELECT id, e164, contact, reason, status, submitted_by, created_at, resolved_by,
       resolved_at, resolution_note
FROM appeals
WHERE ($1::text IS NULL OR status = $1) AND id > $2
ORDER BY id
LIMIT $3;

-- count_open_appeals --
-- How many appeals wait for an analyst
SELECT count(*) FROM appeals WHERE status = 'open';

-- protected_keys --
-- Every protected number, loaded into each node's memory
SELECT e164 FROM protected_numbers;

-- list_protected --
-- Protected numbers in number order, after $1
SELECT e164, name, note, updated_by, updated_at
FROM protected_numbers
WHERE e164 > $1
ORDER BY e164
LIMIT $2;

-- get_protected --
-- One protected number, locked for this transaction
SELECT e164, name, note, updated_by, updated_at
FROM protected_numbers
WHERE e164 = $1
FOR UPDATE;

-- upsert_protected --
-- Protect a number, or change its name and note
INSERT INTO protected_numbers (e164, name, note, updated_by, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (e164) DO UPDATE
SET name = EXCLUDED.name, note = EXCLUDED.note, updated_by = EXCLUDED.updated_by,
    updated_at = EXCLUDED.updated_at
RETURNING e164, name, note, updated_by, updated_at;

-- delete_protected --
-- Stop protecting a number
DELETE FROM protected_numbers WHERE e164 = $1
RETURNING e164, name, note, updated_by, updated_at;

-- appeal_number --
-- Which number an appeal is about (read before locking the number, then the appeal)
SELECT id, e164 FROM appeals WHERE id = $1;

-- SMS intake ---------------------------------------------------------------

-- fetch_sms_answer --
-- The answer given to an SMS message already processed, returned again when the gateway retries
SELECT answer FROM sms_messages WHERE message_id = $1;

-- insert_sms_message --
-- Record one processed SMS message; nothing if the same message_id was recorded meanwhile
INSERT INTO sms_messages (message_id, short_code, sender_hash, text, gateway_received_at,
                          processed_at, error, category, e164, report_id, answer)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id;

-- Change feed, filter snapshots --

-- feed_head --
-- The current snapshot (a node's next feed position), the pruning horizon and the history generation
SELECT pg_current_snapshot()::text AS position, now() AS taken_at, pruned_below, generation
FROM feed_state;

-- changes_since --
-- The changes a node at a position lacks: written by transactions not finished when it was taken
SELECT seq, e164, kind, changed_at
FROM changes
WHERE txid >= $1 OR txid = ANY($2::bigint[])
ORDER BY seq;

-- copy_number_keys --
-- Every known number, one per line through COPY, to fill a new Bloom filter
SELECT e164 FROM numbers

-- advisory_lock --
-- Wait for, then hold, a lock shared by every node (released by advisory_unlock or disconnection)
SELECT pg_advisory_lock($1);

-- advisory_unlock --
-- Release a lock taken with advisory_lock
SELECT pg_advisory_unlock($1);

-- register_feed_node --
-- A node says it is alive and which feed position it has applied
INSERT INTO feed_nodes (node_id, host, pid, position, position_xmin, position_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (node_id) DO UPDATE
SET seen_at = now(), position = excluded.position, position_xmin = excluded.position_xmin,
    position_at = excluded.position_at;

-- forget_feed_node --
-- A node leaves: pruning no longer waits for it
DELETE FROM feed_nodes WHERE node_id = $1;

-- prune_changes --
-- Delete the changes every live node and the newest filter snapshot hold ($1: seconds a node may stay silent, $2: retention seconds); returns how many
WITH live AS (
    SELECT position_xmin FROM feed_nodes
    WHERE seen_at > now() - make_interval(secs => $1)
      AND position_at > now() - make_interval(secs => $2)
), newest_snapshot AS (
    SELECT position_xmin FROM filter_snapshots
    WHERE generation = (SELECT generation FROM feed_state)
    ORDER BY position_xmax DESC
    LIMIT 1
), horizon AS (
    SELECT least((SELECT min(position_xmin) FROM live),
                 (SELECT position_xmin FROM newest_snapshot)) AS txid
), deleted AS (
    DELETE FROM changes WHERE txid < (SELECT txid FROM horizon)
    RETURNING 1
), moved AS (
    UPDATE feed_state SET pruned_below = greatest(pruned_below, (SELECT txid FROM horizon))
    WHERE EXISTS (SELECT FROM deleted)
    RETURNING 1
), forgotten AS (
    DELETE FROM feed_nodes WHERE seen_at < now() - make_interval(secs => $2)
    RETURNING 1
)
SELECT count(*) FROM deleted;

-- newest_filter_snapshot --
-- The description of the newest stored Bloom filter of the current history generation
SELECT id, created_at, generation, position, hashing, capacity, error_rate, num_slices, bits_per_slice, items,
       octet_length(bits) AS size
FROM filter_snapshots
WHERE generation = (SELECT generation FROM feed_state)
ORDER BY position_xmax DESC
LIMIT 1;

-- filter_snapshot_bits --
-- The bits of one stored Bloom filter
SELECT bits FROM filter_snapshots WHERE id = $1;

-- save_filter_snapshot --
-- Store a Bloom filter with the feed position it holds, replacing older ones; nothing if the history generation moved on
WITH saved AS (
    INSERT INTO filter_snapshots (generation, position, position_xmin, position_xmax, hashing,
                                  capacity, error_rate, num_slices, bits_per_slice, items, bits)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
    FROM feed_state
    WHERE generation = $1
    RETURNING id
)
DELETE FROM filter_snapshots
WHERE EXISTS (SELECT FROM saved) AND id NOT IN (SELECT id FROM saved) AND position_xmax <= $4;

-- Status page ---------------------------------------------------------------

-- reports_per_minute --
-- Reports received in each minute since a moment, by every node
SELECT date_trunc('minute', received_at) AS minute, count(*) AS reports
FROM reports
WHERE received_at >= $1
GROUP BY 1
ORDER BY 1;

-- feed_nodes_status --
-- The nodes that follow the change feed, and when each last said it was alive
SELECT host, pid, started_at, seen_at, position_at, now() AS now
FROM feed_nodes
ORDER BY host, pid;

-- top_reported_since --
-- The numbers with the most reports since a moment, and how many people reported them
SELECT e164, count(*) AS reports, count(DISTINCT reporter_hash) AS reporters
FROM reports
WHERE received_at >= $1
GROUP BY e164
ORDER BY count(*) DESC, e164
LIMIT $2;

-- Bulk import and export -----------------------------------------------------

-- existing_idempotency_keys --
-- Which of these Idempotency-Keys were used already (an import run again skips them)
SELECT idempotency_key FROM reports WHERE idempotency_key = ANY($1::text[]);

-- export_numbers --
-- Every known number's aggregate, in number order, for `reputation export`
SELECT e164, status, reports, reporters, categories, first_reported_at, last_reported_at,
       weights, weights_at, heat_key
FROM numbers
ORDER BY e164;

-- The published list (private ranges, exports); list_entries follows
-- numbers.verdict through a trigger, see sql/schema.sql.

-- list_version --
-- The export version: this transaction's snapshot (which writers it sees), as pg_snapshot text
SELECT pg_current_snapshot()::text AS version,
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS newest;

-- listed_entries --
-- Every listed number as published, for a full export and the range index
SELECT e164, listed, verdict, category, reports, reporters
FROM list_entries
WHERE listed;

-- list_changes_since --
-- What changed since a version (writers its snapshot did not see): entries and deletion markers
SELECT e164, listed, verdict, category, reports, reporters
FROM list_entries
WHERE changed_txid >= $1
  AND NOT pg_visible_in_snapshot(changed_txid::text::xid8, $2::text::pg_snapshot);

-- listed_entry_lines --
-- Every listed number as a line of JSON, formatted by the database (a full export)
SELECT format('{"number":"%s","verdict":"%s","category":%s,"reports":%s,"reporters":%s}',
              e164, verdict, coalesce(to_json(category)::text, 'null'), reports, reporters)
FROM list_entries
WHERE listed;

-- list_change_lines --
-- What changed since a version as lines of JSON: entries, and deletion markers
SELECT CASE WHEN listed
    THEN format('{"number":"%s","verdict":"%s","category":%s,"reports":%s,"reporters":%s}',
                e164, verdict, coalesce(to_json(category)::text, 'null'), reports, reporters)
    ELSE format('{"number":"%s","deleted":true}', e164)
END
FROM list_entries
WHERE changed_txid >= $1
  AND NOT pg_visible_in_snapshot(changed_txid::text::xid8, $2::text::pg_snapshot);
