-- Where a lane's stream stood when its inbox row was written (the row is
-- written in the transaction of every append): the id of its last event,
-- beside `version`. A command locks the row first; when the lane is kept
-- folded in the process at that very version and event, the stream need not
-- be read again (`onedoor_event_store::folded`). An erasure writes none, so
-- no process serves a lane folded before it. Rows written before this column
-- have none, and their lanes are read as before.
ALTER TABLE referral_views ADD COLUMN last_event_id uuid;
