-- The household register's read models (the household streams in the event
-- log are the record; a rebuild of the case views rebuilds these too).
CREATE TABLE households (
    household_id  uuid   PRIMARY KEY,
    township      text   NOT NULL,
    division_code text   NOT NULL,
    support       jsonb  NOT NULL,
    version       bigint NOT NULL
);

-- Who lives in which household, from when to when (left_on NULL: still there).
CREATE TABLE household_members (
    household_id uuid NOT NULL,
    id_number    text NOT NULL,
    name         text NOT NULL,
    relation     text NOT NULL,
    joined_on    date NOT NULL,
    left_on      date,
    position     integer NOT NULL,
    PRIMARY KEY (household_id, position)
);
-- A person lives in one household at a time.
CREATE UNIQUE INDEX household_members_current ON household_members (id_number) WHERE left_on IS NULL;

-- The case list knows each case's household.
ALTER TABLE case_views ADD COLUMN household_id uuid;
CREATE INDEX case_views_by_household ON case_views (household_id) WHERE household_id IS NOT NULL;

-- Reads of personal data, by whom and why: append-only. Never an ID number
-- or a name here: the subject is a case or a household id.
CREATE TABLE audit_log (
    entry_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    role         text        NOT NULL,
    action       text        NOT NULL,
    case_id      uuid,
    household_id uuid,
    trace_id     text
);
CREATE INDEX audit_log_by_case ON audit_log (case_id, at) WHERE case_id IS NOT NULL;
