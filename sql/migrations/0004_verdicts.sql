-- Verdicts that age and resist abuse: decayed evidence per number, the stored
-- current verdict with the moment decay changes it, per-reporter daily caps,
-- the analysts' audit trail, appeals and protected numbers. Existing data is
-- carried over: every distinct reporter counts from their first report, with
-- the default half-life of 90 days, and the service re-judges every number at
-- its next start (no policy fingerprint is stored yet).

-- Each report says whether it counted (a new or renewed distinct reporter
-- within the daily cap) or was only recorded, and shows analysts its reporter
-- masked (privacy.mask: "+84 98x xxx x01"), never in clear.
ALTER TABLE reports
    ADD COLUMN counted boolean NOT NULL DEFAULT false,
    ADD COLUMN reporter_masked text;

-- The category and time of a reporter's last counted report on this number:
-- their contribution is 1 at that time, halving every half-life.
ALTER TABLE number_reporters
    ADD COLUMN category text,
    ADD COLUMN counted_at timestamptz;

UPDATE number_reporters nr
SET counted_at = nr.first_reported_at,
    category = (SELECT r.category FROM reports r
                WHERE r.e164 = nr.e164 AND r.reporter_hash = nr.reporter_hash
                ORDER BY r.id LIMIT 1);

UPDATE reports SET counted = true
WHERE id IN (SELECT min(id) FROM reports GROUP BY e164, reporter_hash);

ALTER TABLE numbers
    -- Distinct reporters per category, decayed to weights_at.
    ADD COLUMN weights jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN weights_at timestamptz,
    -- log2 of the report activity, in heat half-lives since 1970: ordering by
    -- it orders by current heat, whatever the time.
    ADD COLUMN heat_key double precision NOT NULL DEFAULT '-Infinity',
    -- When an analyst last cleared the number (only reporters new since count).
    ADD COLUMN cleared_at timestamptz,
    -- The verdict as of the last report, status change or sweep (no call
    -- context), and when decay will next lower it.
    ADD COLUMN verdict text NOT NULL DEFAULT 'allow' CHECK (verdict IN ('allow', 'warn', 'block')),
    ADD COLUMN verdict_changes_at timestamptz,
    ADD COLUMN open_appeal_id bigint;

UPDATE numbers n
SET weights = w.weights, weights_at = now()
FROM (
    SELECT e164, jsonb_object_agg(category, weight) AS weights
    FROM (
        SELECT e164, category,
               sum(power(2, -extract(epoch FROM now() - counted_at) / (90 * 86400))) AS weight
        FROM number_reporters
        WHERE counted_at IS NOT NULL
        GROUP BY e164, category
    ) per_category
    GROUP BY e164
) w
WHERE w.e164 = n.e164;

UPDATE numbers n
SET heat_key = h.heat_key
FROM (
    SELECT e164, top + log(2, sum(power(2, k - top))) AS heat_key
    FROM (
        SELECT e164, extract(epoch FROM received_at) / (7 * 86400) AS k,
               max(extract(epoch FROM received_at) / (7 * 86400)) OVER (PARTITION BY e164) AS top
        FROM reports
        WHERE counted
    ) keyed
    GROUP BY e164, top
) h
WHERE h.e164 = n.e164;

-- The review queue pages through numbers by these keys (keyset pagination).
DROP INDEX numbers_reporters_idx;
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

-- How many numbers each reporter has counted on, per reporting day (the cap).
CREATE TABLE reporter_days (
    reporter_hash bytea NOT NULL,
    day date NOT NULL,
    numbers integer NOT NULL,
    PRIMARY KEY (reporter_hash, day)
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
