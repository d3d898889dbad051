-- The inbox filters by township and by overdue: both read from columns
-- beside the summary instead of from its JSON.
ALTER TABLE referral_views ADD COLUMN township text, ADD COLUMN deadline date;
UPDATE referral_views SET township = view ->> 'township', deadline = (view ->> 'deadline')::date;
ALTER TABLE referral_views ALTER COLUMN township SET NOT NULL, ALTER COLUMN deadline SET NOT NULL;
CREATE INDEX referral_views_by_township ON referral_views (township, received_at DESC, referral_id DESC);
