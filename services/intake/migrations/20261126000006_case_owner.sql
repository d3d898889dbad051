-- First-contact responsibility (首问负责): the clerk who owns a case, for
-- `GET /api/v1/cases?owner=me`. The owner is the accepting clerk until a
-- hand-over; existing cases are filled from their views.
ALTER TABLE case_views ADD COLUMN owner text;
UPDATE case_views SET owner = view ->> 'accepted_by';
CREATE INDEX case_views_by_owner ON case_views (township, owner, submitted_at DESC, case_id DESC);
