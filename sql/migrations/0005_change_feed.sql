-- The change feed read exactly once by every node, the nodes that read it, and
-- the stored Bloom filter snapshots a new node starts from.

-- Which top-level transaction wrote each change. Sequence numbers are not
-- commit-ordered, so nodes compare this id with PostgreSQL snapshots
-- (pg_current_snapshot) to read precisely the changes committed since the
-- snapshot they last applied. The default fills it for every writer.
ALTER TABLE changes
    ADD COLUMN txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX changes_txid_idx ON changes (txid);
-- The time the row was written (not the start of its transaction): the
-- age of a change as nodes see it.
ALTER TABLE changes ALTER COLUMN changed_at SET DEFAULT clock_timestamp();

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
