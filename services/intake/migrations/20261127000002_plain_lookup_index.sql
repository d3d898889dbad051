-- Rows whose lookup column still holds an ID number (an earlier release's):
-- intake re-keys them at every start-up (`store::rekey_lookups`). These
-- partial indexes hold only such rows, so that check reads an empty index
-- instead of scanning the tables; the query orders by the indexed column so
-- the planner takes it.
CREATE INDEX case_views_plain_lookup ON case_views (case_id) WHERE length(applicant_id_number) <> 64;
CREATE INDEX open_lines_plain_lookup ON open_lines (department) WHERE length(id_number) <> 64;
CREATE INDEX household_members_plain_lookup ON household_members (household_id) WHERE length(id_number) <> 64;
