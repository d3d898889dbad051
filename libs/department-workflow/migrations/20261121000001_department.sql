-- The department's inbox read model (the event log is the record).
CREATE TABLE referral_views (
    referral_id uuid        PRIMARY KEY,
    case_id     uuid        NOT NULL,
    status      text        NOT NULL,
    received_at timestamptz NOT NULL,
    version     bigint      NOT NULL,
    view        jsonb       NOT NULL
);
CREATE INDEX referral_views_inbox ON referral_views (received_at DESC, referral_id DESC);

-- Approvals booked per person or household and year: annual caps and
-- once-a-year rules are checked against it.
CREATE TABLE ledger (
    referral_id uuid    PRIMARY KEY,
    ledger_key  text    NOT NULL,
    category    text    NOT NULL,
    year        integer NOT NULL,
    amount_fen  bigint  NOT NULL
);
CREATE INDEX ledger_by_key ON ledger (ledger_key, year);
