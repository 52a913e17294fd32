-- Requests of signed-in officials refused with 404 because the resource belongs to another
-- department or does not exist (ID probing): one row per (minute, official, source) counts
-- them, and only the first of a row writes an access.denied audit event (aggregated), so a
-- probe costs a counter bump, not a log entry, while the burst rule counts every one.
CREATE TABLE denied_access_counts (
    minute      timestamptz NOT NULL,
    official    text NOT NULL CHECK (length(official) <= 64),
    department  text NOT NULL CHECK (length(department) <= 63),
    source      text NOT NULL CHECK (length(source) <= 64),
    count       integer NOT NULL,
    last_reason text NOT NULL CHECK (length(last_reason) <= 100),
    PRIMARY KEY (minute, official, source)
);
CREATE INDEX denied_access_counts_minute ON denied_access_counts (minute);

-- Notes on an alert: the department concerned explains (it may not close an alert about
-- itself; only inspectors acknowledge and close), inspectors comment. Each
-- {"at", "by", "department", "note"}; at most 50 an alert (storage/supervision.py).
ALTER TABLE supervision_alerts ADD COLUMN notes jsonb NOT NULL DEFAULT '[]'::jsonb;
