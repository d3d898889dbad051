-- Window events (a withdrawal, materials handed in) that named a referral
-- this department had not received yet. They are applied when the referral
-- arrives, so the outcome never depends on the order of delivery. Rows for
-- referrals of other departments (the window's events name every lane of a
-- case) never match and are purged after 90 days.
CREATE TABLE early_window_events (
    referral_id uuid        NOT NULL,
    event_id    uuid        NOT NULL,
    kind        text        NOT NULL,
    payload     jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (referral_id, event_id)
);
CREATE INDEX early_window_events_age ON early_window_events (received_at);
