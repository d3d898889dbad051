-- Rebuilds of the case views from the event log: background jobs with their
-- progress, visible from every replica. At most one runs at a time; one whose
-- heartbeat stopped (its process died) may be started again.
CREATE TABLE rebuild_jobs (
    job_id       uuid        PRIMARY KEY,
    requested_by text        NOT NULL,
    status       text        NOT NULL,
    cases_total  bigint      NOT NULL DEFAULT 0,
    cases_done   bigint      NOT NULL DEFAULT 0,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE UNIQUE INDEX rebuild_jobs_one_running ON rebuild_jobs ((true)) WHERE status = 'running';
