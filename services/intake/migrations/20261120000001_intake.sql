-- The case list read model (the event log is the record; this is rebuilt from it).
CREATE TABLE case_views (
    case_id       uuid        PRIMARY KEY,
    case_number   text        NOT NULL UNIQUE,
    township      text        NOT NULL,
    status        text        NOT NULL,
    submitted_at  timestamptz NOT NULL,
    -- Earliest deadline among lanes whose clock runs: overdue filter.
    next_deadline date,
    version       bigint      NOT NULL,
    view          jsonb       NOT NULL
);
CREATE INDEX case_views_by_township ON case_views (township, submitted_at DESC, case_id DESC);

-- One open case per applicant and aid line.
CREATE TABLE open_lines (
    applicant_id_number text NOT NULL,
    department          text NOT NULL,
    case_id             uuid NOT NULL,
    case_number         text NOT NULL,
    PRIMARY KEY (applicant_id_number, department)
);

-- Idempotency-Key: the same key and body return the same case.
CREATE TABLE idempotency_keys (
    township   text        NOT NULL,
    key        text        NOT NULL,
    request    jsonb       NOT NULL,
    response   jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (township, key)
);

CREATE TABLE case_number_counters (
    township text    NOT NULL,
    year     integer NOT NULL,
    last     bigint  NOT NULL,
    PRIMARY KEY (township, year)
);
