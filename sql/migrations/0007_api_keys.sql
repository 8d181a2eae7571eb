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
