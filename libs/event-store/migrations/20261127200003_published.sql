-- Where each integration event with personal fields went on the broker (its
-- stream and sequence, from the PubAck), by the key of what it is about (its
-- case): an erasure removes the household's messages from the streams
-- (ADR 0019). Kept as long as the streams keep messages, then removed by
-- housekeeping.
CREATE TABLE published (
    stream_key   text        NOT NULL,
    stream       text        NOT NULL,
    sequence     bigint      NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_key, stream, sequence)
);
CREATE INDEX published_age ON published (published_at);

-- The cases whose messages are to be erased from the broker, written in the
-- transaction that erases the household (or the department's copy of the
-- case), and taken by the service's broker-erasure task once done: an
-- erasure reaches the broker even when it is away at that moment.
CREATE TABLE broker_erasures (
    stream_key   text        PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);
