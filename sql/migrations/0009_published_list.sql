-- The published list: what offline copies, hash-prefix ranges and exports say
-- about each number whose verdict is warn or block, with rounded counts, and a
-- change marker that lets a client ask for "everything since my version".

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

-- Numbers listed before this migration.
INSERT INTO list_entries (e164, listed, verdict, category, reports, reporters, changed_txid)
SELECT e164, true, verdict, published_category(categories), published_count(reports),
       published_count(reporters), pg_current_xact_id()::text::bigint
FROM numbers
WHERE verdict IN ('warn', 'block');
