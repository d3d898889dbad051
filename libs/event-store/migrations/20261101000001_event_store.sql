-- The event log: the system of record of every OneDoor service.
CREATE TABLE events (
    global_position bigserial   PRIMARY KEY,
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         bigint      NOT NULL CHECK (version > 0),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, version)
);
-- No index on stream_type or event_id: every index costs each append, and
-- rebuilding a read model (the only reader by type) is rare and scans anyway.

-- Integration events waiting to be published, written in the same transaction
-- as the domain events they announce (transactional outbox). A row is deleted
-- once JetStream has acknowledged it: the event log keeps the history.
CREATE TABLE outbox (
    position   bigserial   PRIMARY KEY,
    event_id   uuid        NOT NULL,
    stream_key text        NOT NULL,
    subject    text        NOT NULL,
    headers    jsonb       NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Messages already acted on, per consumer: the guard against redelivery.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
