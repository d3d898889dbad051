-- The audit log becomes the hash-chained audit trail every service keeps
-- (onedoor-audit, applied before this): its entries move there, to be
-- sealed in the order they were written.
INSERT INTO audit_trail (at, actor, role, action, outcome, referral_id, document_id, trace_id)
SELECT at, actor, role, action, 200, referral_id, document_id, trace_id FROM audit_log ORDER BY entry_id;
DROP TABLE audit_log;
