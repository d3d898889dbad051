-- The inbox filtered by status (a caseworker's newly referred lanes, say)
-- reads its page from an index instead of every lane.
CREATE INDEX referral_views_by_status ON referral_views (status, received_at DESC, referral_id DESC);
