-- When each approval was booked: a rule counts the approvals of its own
-- period (a calendar year, a school year from 1 September, five years for a
-- renovation grant, the last twelve months for a rent subsidy), not only of
-- the calendar year.
ALTER TABLE ledger ADD COLUMN booked_at timestamptz;
UPDATE ledger SET booked_at = (make_date(year, 1, 1)::timestamp AT TIME ZONE 'UTC') - interval '8 hours'
    WHERE booked_at IS NULL;
ALTER TABLE ledger ALTER COLUMN booked_at SET NOT NULL;
CREATE INDEX ledger_by_key_and_time ON ledger (ledger_key, booked_at);
