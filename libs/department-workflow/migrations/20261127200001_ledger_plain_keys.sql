-- The ledger books a person's approvals under the keyed hash of their ID
-- number (64 hex digits), a household's under `household:<id>`. Rows an
-- earlier release booked under the number itself are re-keyed at start-up
-- (`store::rekey_ledger`); this partial index finds them without reading
-- the whole ledger, and is empty once they are done.
CREATE INDEX ledger_plain_keys ON ledger (referral_id)
    WHERE length(ledger_key) <> 64 AND ledger_key NOT LIKE 'household:%';
