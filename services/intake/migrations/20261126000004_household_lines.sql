-- The duplicate guard holds a line for every member of the household, not
-- only the applicant: a spouse cannot open a second case for a line the
-- household already has open. A line is held until its case is closed or
-- withdrawn, or the department returns it. Rows written before this
-- migration name applicants only; a rebuild of the case views
-- (POST /api/v1/admin/case-views/rebuild) claims every member's.
ALTER TABLE open_lines RENAME COLUMN applicant_id_number TO id_number;
ALTER TABLE open_lines ADD COLUMN township text;
UPDATE open_lines SET township = split_part(case_number, '-', 1);
ALTER TABLE open_lines ALTER COLUMN township SET NOT NULL;
CREATE INDEX open_lines_by_case ON open_lines (case_id);
