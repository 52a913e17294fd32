-- Audit events are written here in the same transaction as the change they record;
-- the sequencer (a single process at a time) moves them into the append-only log.
CREATE TABLE audit_outbox (
    id              bigserial PRIMARY KEY,
    type            text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_.]{1,63}$'),
    at              timestamptz NOT NULL,
    actor_official  text CHECK (length(actor_official) <= 100),
    actor_jkt       text CHECK (length(actor_jkt) <= 100),
    department      text CHECK (length(department) <= 63),
    document        text CHECK (length(document) <= 100),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
