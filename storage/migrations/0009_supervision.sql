-- E-supervision (电子监察): alerts raised by the rules, and the indexes the statistics need.

-- An alert lives open -> acknowledged -> closed. The evaluator opens one when a rule hits and
-- closes it when the cause goes away (e.g. the receipt arrived); people only acknowledge.
-- At most one live (not closed) alert per (rule, subject): a rule that keeps hitting keeps
-- the same alert open instead of raising a new one every pass.
CREATE TABLE supervision_alerts (
    id               uuid PRIMARY KEY,
    rule             text NOT NULL CHECK (rule ~ '^[a-z][a-z0-9_]{1,40}$'),
    subject          text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    -- The department concerned (sees the alert, its dept_admin may acknowledge it);
    -- NULL for platform-wide alerts (e.g. a source address), seen by inspectors only.
    department       text CHECK (length(department) <= 63),
    state            text NOT NULL CHECK (state IN ('open', 'acknowledged', 'closed')),
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    closed_at        timestamptz,
    close_reason     text CHECK (length(close_reason) <= 100),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL)),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
CREATE UNIQUE INDEX supervision_alerts_live ON supervision_alerts (rule, subject)
    WHERE state <> 'closed';
-- Listing newest first, by state and by department (keyset pagination on opened_at, id).
CREATE INDEX supervision_alerts_state ON supervision_alerts (state, opened_at DESC, id DESC);
CREATE INDEX supervision_alerts_department ON supervision_alerts (department, opened_at DESC, id DESC);

-- Statistics over a year of deliveries: one index range per department and period, covering
-- every column the aggregates read, so the answer comes from an index-only scan.
CREATE INDEX deliveries_recipient_created ON deliveries (recipient, created_at)
    INCLUDE (state, due_at, decided_at);
-- "Overdue now" per department without touching closed deliveries.
CREATE INDEX deliveries_open_recipient ON deliveries (recipient, due_at)
    WHERE state IN ('pending', 'fetched');
-- "Sent" per department and period.
CREATE INDEX documents_sender_dispatched ON documents (sender, dispatched_at)
    WHERE dispatched_at IS NOT NULL;
