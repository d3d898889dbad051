-- The audit trail: one row per request of a member of staff (who, role,
-- what, which records, outcome, trace), ids only, never personal data.
-- Rows are appended by the API and later sealed into a hash chain (seq,
-- prev_hash, hash) by one sealer at a time; the chain head is
-- audit_chain. Append-only: a sealed row cannot change, an unsealed one
-- can only be sealed, and no row younger than six months can be deleted.
CREATE TABLE audit_trail (
    entry_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text        NOT NULL,
    role         text        NOT NULL,
    action       text        NOT NULL,
    outcome      smallint    NOT NULL,
    case_id      uuid,
    referral_id  uuid,
    household_id uuid,
    document_id  uuid,
    purpose      text,
    trace_id     text,
    seq          bigint      UNIQUE,
    prev_hash    bytea,
    hash         bytea,
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL))
);
CREATE INDEX audit_trail_by_case ON audit_trail (case_id, entry_id) WHERE case_id IS NOT NULL;
CREATE INDEX audit_trail_by_referral ON audit_trail (referral_id, entry_id) WHERE referral_id IS NOT NULL;
CREATE INDEX audit_trail_by_household ON audit_trail (household_id, entry_id) WHERE household_id IS NOT NULL;
CREATE INDEX audit_trail_by_actor ON audit_trail (actor, entry_id);
CREATE INDEX audit_trail_by_time ON audit_trail (at);
CREATE INDEX audit_trail_unsealed ON audit_trail (entry_id) WHERE seq IS NULL;

CREATE TABLE audit_chain (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint  NOT NULL,
    hash     bytea   NOT NULL
);
INSERT INTO audit_chain (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'the audit trail cannot be truncated';
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF OLD.at > now() - interval '6 months' THEN
            RAISE EXCEPTION 'audit entries are kept at least six months (entry %)', OLD.entry_id;
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.seq IS NOT NULL
       OR (NEW.entry_id, NEW.at, NEW.actor, NEW.role, NEW.action, NEW.outcome, NEW.case_id, NEW.referral_id,
           NEW.household_id, NEW.document_id, NEW.purpose, NEW.trace_id)
          IS DISTINCT FROM
          (OLD.entry_id, OLD.at, OLD.actor, OLD.role, OLD.action, OLD.outcome, OLD.case_id, OLD.referral_id,
           OLD.household_id, OLD.document_id, OLD.purpose, OLD.trace_id) THEN
        RAISE EXCEPTION 'audit entries are append-only (entry %)', OLD.entry_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only();
CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();
