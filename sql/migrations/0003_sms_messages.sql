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
