-- The scans of the materials a referral needs, as the window announced them
-- (the bytes are in the shared document store under their digest). A row may
-- come before its referral: announcements are delivered in any order.
CREATE TABLE referral_documents (
    referral_id  uuid        NOT NULL,
    document_id  uuid        NOT NULL,
    material     text        NOT NULL,
    sha256       text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL,
    attached_at  timestamptz NOT NULL,
    PRIMARY KEY (referral_id, document_id)
);

-- Reads of personal data, by whom: append-only, ids only.
CREATE TABLE audit_log (
    entry_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    role        text        NOT NULL,
    action      text        NOT NULL,
    referral_id uuid,
    document_id uuid,
    trace_id    text
);
