-- The whole current schema, as applying every file of migrations/ in order
-- gives it (tests/integration/test_migrations.py checks that they agree).
-- Read this file to learn the schema; change it only together with a new
-- migration.

CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per number the service knows anything about (its E.164 key).
CREATE TABLE numbers (
    e164 text PRIMARY KEY CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    status text NOT NULL DEFAULT 'reported'
        CHECK (status IN ('reported', 'confirmed', 'cleared', 'allowlisted')),
    reports integer NOT NULL DEFAULT 0,
    reporters integer NOT NULL DEFAULT 0,
    categories jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_reported_at timestamptz,
    last_reported_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Distinct reporters per category, decayed to weights_at.
    weights jsonb NOT NULL DEFAULT '{}'::jsonb,
    weights_at timestamptz,
    -- log2 of the report activity, in heat half-lives since 1970: ordering by
    -- it orders by current heat, whatever the time.
    heat_key double precision NOT NULL DEFAULT '-Infinity',
    -- When an analyst last cleared the number (only reporters new since count).
    cleared_at timestamptz,
    -- The verdict as of the last report, status change or sweep (no call
    -- context), and when decay will next lower it.
    verdict text NOT NULL DEFAULT 'allow' CHECK (verdict IN ('allow', 'warn', 'block')),
    verdict_changes_at timestamptz,
    open_appeal_id bigint
);

-- The review queue pages through numbers by these keys (keyset pagination);
-- start-up warms the cache with the most reported numbers.
CREATE INDEX numbers_reporters_idx ON numbers (reporters, e164);
CREATE INDEX numbers_recent_idx ON numbers (coalesce(last_reported_at, '-infinity'), e164);
CREATE INDEX numbers_heat_idx ON numbers (heat_key, e164);
-- The few numbers an analyst touched or that are under appeal, in the same orders.
CREATE INDEX numbers_reviewed_reporters_idx ON numbers (reporters, e164)
    WHERE status <> 'reported' OR open_appeal_id IS NOT NULL;
CREATE INDEX numbers_reviewed_recent_idx
    ON numbers (coalesce(last_reported_at, '-infinity'), e164)
    WHERE status <> 'reported' OR open_appeal_id IS NOT NULL;
CREATE INDEX numbers_reviewed_heat_idx ON numbers (heat_key, e164)
    WHERE status <> 'reported' OR open_appeal_id IS NOT NULL;
-- The decay sweep reads only the numbers whose verdict is due to change.
CREATE INDEX numbers_verdict_changes_idx ON numbers (verdict_changes_at)
    WHERE verdict_changes_at IS NOT NULL;

-- Every report ever accepted. The reporter is kept only as a keyed hash.
CREATE TABLE reports (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    e164 text NOT NULL REFERENCES numbers (e164),
    reporter_hash bytea NOT NULL,
    channel text NOT NULL,
    category text NOT NULL,
    content text CHECK (char_length(content) <= 1000),
    received_at timestamptz NOT NULL DEFAULT now(),
    idempotency_key text UNIQUE,
    request_hash bytea,
    -- Whether it counted (a new or renewed distinct reporter within the daily
    -- cap) or was only recorded.
    counted boolean NOT NULL DEFAULT false,
    -- The reporter as analysts see it (privacy.mask: "+84 98x xxx x01").
    reporter_masked text
);

CREATE INDEX reports_e164_idx ON reports (e164, id);

-- Recent reports (status page): reports per minute, most reported numbers of the day.
CREATE INDEX reports_received_at_idx ON reports (received_at);

-- Who reported a number (hashed), so that each reporter counts once.
CREATE TABLE number_reporters (
    e164 text NOT NULL REFERENCES numbers (e164),
    reporter_hash bytea NOT NULL,
    first_reported_at timestamptz NOT NULL,
    -- The category and time of their last counted report on this number: their
    -- contribution is 1 at that time, halving every half-life.
    category text,
    counted_at timestamptz,
    PRIMARY KEY (e164, reporter_hash)
);

-- How many numbers each reporter has counted on, per reporting day (the cap).
CREATE TABLE reporter_days (
    reporter_hash bytea NOT NULL,
    day date NOT NULL,
    numbers integer NOT NULL,
    PRIMARY KEY (reporter_hash, day)
);

-- Every change that can alter a lookup answer, appended in the transaction of
-- the change (NOTIFY only wakes the nodes). txid is the writer's top-level
-- transaction id: sequence numbers are not commit-ordered, so nodes compare
-- txid with PostgreSQL snapshots to read exactly the changes committed since
-- the snapshot they last applied.
CREATE TABLE changes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    e164 text NOT NULL,
    kind text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint)
);

CREATE INDEX changes_txid_idx ON changes (txid);

-- Secrets generated by the server itself when none is configured.
CREATE TABLE server_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);

-- Every message the SMS gateway delivered, accepted or refused: the answer
-- given (returned again when the gateway retries the same message_id) and
-- what analysts need to see why messages were refused. The sender is kept only
-- as the keyed hash that reports use; the text has the sender's own number
-- masked.
CREATE TABLE sms_messages (
    message_id text PRIMARY KEY CHECK (char_length(message_id) BETWEEN 1 AND 200),
    short_code text NOT NULL,
    sender_hash bytea,
    text text NOT NULL,
    gateway_received_at timestamptz,
    processed_at timestamptz NOT NULL,
    error text,
    category text,
    e164 text,
    report_id bigint REFERENCES reports (id),
    answer jsonb NOT NULL,
    CHECK ((error IS NULL) = (report_id IS NOT NULL))
);

-- Analysts read the refused messages by reason, most recent first.
CREATE INDEX sms_messages_refused_idx ON sms_messages (error, processed_at DESC)
    WHERE error IS NOT NULL;

-- API keys: who may call the service, in which role. Only a SHA-256 of each
-- key is kept; the key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    role text NOT NULL
        CHECK (role IN ('lookup', 'report', 'sms_gateway', 'analyst', 'admin')),
    key_hash bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    key_prefix text NOT NULL,
    rate_limit text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Who changed what about a number, when, from what, to what, and why.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    e164 text NOT NULL,
    action text NOT NULL CHECK (action IN ('status', 'protect', 'unprotect', 'appeal')),
    actor text NOT NULL,
    from_value text,
    to_value text,
    note text,
    at timestamptz NOT NULL
);

CREATE INDEX audit_log_e164_idx ON audit_log (e164, id);

-- Requests from a number's owner to review its verdict; one open at a time.
CREATE TABLE appeals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    e164 text NOT NULL REFERENCES numbers (e164),
    contact text NOT NULL,
    reason text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'rejected')),
    submitted_by text NOT NULL,
    created_at timestamptz NOT NULL,
    resolved_by text,
    resolved_at timestamptz,
    resolution_note text
);

CREATE UNIQUE INDEX appeals_one_open_idx ON appeals (e164) WHERE status = 'open';
CREATE INDEX appeals_status_idx ON appeals (status, id);

-- Numbers that reports can never push to block (emergency, government, banks,
-- the reporting line itself); a call showing one without full attestation is
-- flagged as spoofed.
CREATE TABLE protected_numbers (
    e164 text PRIMARY KEY CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    name text NOT NULL,
    note text,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Small facts the service keeps about itself (e.g. the verdict policy in force).
CREATE TABLE server_state (
    name text PRIMARY KEY,
    value text NOT NULL
);

-- The nodes reading the feed and the position each has applied; pruning keeps
-- every change a live node still lacks.
CREATE TABLE feed_nodes (
    node_id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now(),
    position text NOT NULL,
    position_xmin bigint NOT NULL,
    position_at timestamptz NOT NULL
);

-- One row: changes with a txid below pruned_below are gone (a node whose
-- position is older reloads); generation grows when rows vanish without
-- passing through the change log (TRUNCATE), which makes every node reload.
CREATE TABLE feed_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_below bigint NOT NULL DEFAULT 0,
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO feed_state DEFAULT VALUES;

-- A serialized Bloom filter with the feed position it holds: a new node loads
-- the newest one and replays only the change log after it.
CREATE TABLE filter_snapshots (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    generation bigint NOT NULL,
    position text NOT NULL,
    position_xmin bigint NOT NULL,
    position_xmax bigint NOT NULL,
    hashing text NOT NULL,
    capacity bigint NOT NULL,
    error_rate double precision NOT NULL,
    num_slices integer NOT NULL,
    bits_per_slice bigint NOT NULL,
    items bigint NOT NULL,
    bits bytea NOT NULL
);
-- Filter bits look random: PostgreSQL need not try to compress them.
ALTER TABLE filter_snapshots ALTER COLUMN bits SET STORAGE EXTERNAL;

CREATE FUNCTION feed_history_lost() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Rows vanished without a change row: no snapshot is valid any more and
    -- every node must reload from the tables.
    DELETE FROM filter_snapshots;
    UPDATE feed_state SET generation = generation + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER numbers_truncated AFTER TRUNCATE ON numbers
    FOR EACH STATEMENT EXECUTE FUNCTION feed_history_lost();
CREATE TRIGGER changes_truncated AFTER TRUNCATE ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION feed_history_lost();
-- One row per number that is or once was listed (verdict warn or block).
-- A number that leaves the list keeps its row with listed = false: that is the
-- deletion marker a delta export sends. changed_txid is the top-level
-- transaction id (xid8 as bigint) of the last change that altered the row; an
-- export version is the snapshot the export was read in, and a delta holds
-- the rows whose changed_txid that snapshot did not see as committed.
CREATE TABLE list_entries (
    e164 text PRIMARY KEY,
    listed boolean NOT NULL,
    verdict text NOT NULL,
    category text,
    reports integer NOT NULL,
    reporters integer NOT NULL,
    changed_txid bigint NOT NULL
);

CREATE INDEX list_entries_changed_txid_idx ON list_entries (changed_txid);

-- Counts as published: rounded down to 1, 2, 5, 10, 20, 50 or 100 (100 means
-- "100 or more"), so that the list does not reveal exact report activity.
-- reputation/listing.py rounds the same way.
CREATE FUNCTION published_count(n integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN n >= 100 THEN 100
        WHEN n >= 50 THEN 50
        WHEN n >= 20 THEN 20
        WHEN n >= 10 THEN 10
        WHEN n >= 5 THEN 5
        WHEN n >= 2 THEN 2
        WHEN n >= 1 THEN 1
        ELSE 0
    END
$$;

-- The category with the most reports (ties: the first by name), as published.
CREATE FUNCTION published_category(categories jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT key FROM jsonb_each_text(categories) ORDER BY value::integer DESC, key LIMIT 1
$$;

-- Keep list_entries equal to what the numbers table says, in the transaction
-- that changed the number. The row is rewritten (and its changed_txid moved)
-- only when what is published actually changes, so a report that does not
-- move a rounded count is invisible in the exports.
CREATE FUNCTION publish_list_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    is_listed boolean := TG_OP <> 'DELETE' AND NEW.verdict IN ('warn', 'block');
BEGIN
    IF is_listed THEN
        INSERT INTO list_entries AS e
            (e164, listed, verdict, category, reports, reporters, changed_txid)
        VALUES (NEW.e164, true, NEW.verdict, published_category(NEW.categories),
                published_count(NEW.reports), published_count(NEW.reporters),
                pg_current_xact_id()::text::bigint)
        ON CONFLICT (e164) DO UPDATE
        SET listed = true, verdict = EXCLUDED.verdict, category = EXCLUDED.category,
            reports = EXCLUDED.reports, reporters = EXCLUDED.reporters,
            changed_txid = EXCLUDED.changed_txid
        WHERE (e.listed, e.verdict, e.category, e.reports, e.reporters)
              IS DISTINCT FROM (true, EXCLUDED.verdict, EXCLUDED.category,
                                EXCLUDED.reports, EXCLUDED.reporters);
    ELSE
        UPDATE list_entries
        SET listed = false, changed_txid = pg_current_xact_id()::text::bigint
        WHERE e164 = OLD.e164 AND listed;
    END IF;
    RETURN NULL;
END
$$;

-- Only numbers that are or were listed cost anything: the WHEN clauses skip
-- every report on a number that stays at allow.
CREATE TRIGGER numbers_publish_insert AFTER INSERT ON numbers
    FOR EACH ROW WHEN (NEW.verdict IN ('warn', 'block'))
    EXECUTE FUNCTION publish_list_entry();
CREATE TRIGGER numbers_publish_update AFTER UPDATE ON numbers
    FOR EACH ROW WHEN (OLD.verdict IN ('warn', 'block') OR NEW.verdict IN ('warn', 'block'))
    EXECUTE FUNCTION publish_list_entry();
CREATE TRIGGER numbers_publish_delete AFTER DELETE ON numbers
    FOR EACH ROW WHEN (OLD.verdict IN ('warn', 'block'))
    EXECUTE FUNCTION publish_list_entry();
