-- Where a case's stream stood when its list row was written (the row is
-- written in the transaction of every append): the id of its last event,
-- beside `version`. A change reads the row first, under its lock; when the
-- case is kept folded in the process at that very version and event, the
-- stream need not be read again (`onedoor_event_store::folded`). Rows
-- written before this column have none, and their cases are read as before.
ALTER TABLE case_views ADD COLUMN last_event_id uuid;
