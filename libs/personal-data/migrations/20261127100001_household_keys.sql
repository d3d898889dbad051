-- One data key per household, wrapped by the key-encryption key (KEK).
-- Erasure (crypto-shredding) sets `wrapped` to NULL: every field sealed with
-- the key is then unreadable in the event log, the read models and any dump.
-- The row stays, so a later write for the erased household is refused
-- instead of sealing under a fresh key.
CREATE TABLE household_keys (
    household_id uuid        PRIMARY KEY,
    kek_id       text        NOT NULL,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL))
);
