-- Webhooks: department systems get each new delivery pushed to an HTTPS endpoint.

-- Targets an admin allowed (host and port, exactly). allow_private lets a name resolve to
-- a private or loopback address (a department system inside the government network);
-- without it such answers are refused, so DNS cannot point a webhook inward.
CREATE TABLE webhook_allowlist (
    id             uuid PRIMARY KEY,
    host           text NOT NULL CHECK (host ~ '^[a-z0-9][a-z0-9.:-]{0,252}$'),
    port           integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    allow_private  boolean NOT NULL DEFAULT false,
    note           text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    added_by       text NOT NULL,
    added_at       timestamptz NOT NULL,
    UNIQUE (host, port)
);

CREATE TABLE webhooks (
    id              uuid PRIMARY KEY,
    department      org_code NOT NULL REFERENCES departments (code),
    url             text NOT NULL CHECK (length(url) BETWEEN 9 AND 2000),
    host            text NOT NULL,
    port            integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    secret_wrapped  bytea NOT NULL,
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);
CREATE INDEX webhooks_department ON webhooks (department) WHERE deleted_at IS NULL;

-- The queue: one job per (webhook, delivery), claimed with FOR UPDATE SKIP LOCKED. The
-- job id is sent with every attempt so a receiver can drop duplicates (at-least-once).
CREATE TABLE webhook_jobs (
    id               uuid PRIMARY KEY,
    webhook          uuid NOT NULL REFERENCES webhooks (id),
    delivery         uuid NOT NULL REFERENCES deliveries (id),
    state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    dead_at          timestamptz,
    last_status      integer,
    last_error       text,
    UNIQUE (webhook, delivery)
);
CREATE INDEX webhook_jobs_due ON webhook_jobs (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_jobs_dead ON webhook_jobs (webhook, dead_at) WHERE state = 'dead';

-- Retry policy, one row, kept by admins (read by every gateway process at each attempt).
CREATE TABLE webhook_policy (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_attempts     integer NOT NULL DEFAULT 8 CHECK (max_attempts BETWEEN 1 AND 30),
    base_delay_ms    integer NOT NULL DEFAULT 30000 CHECK (base_delay_ms BETWEEN 1 AND 86400000),
    max_delay_ms     integer NOT NULL DEFAULT 3600000 CHECK (max_delay_ms BETWEEN 1 AND 86400000),
    updated_by       text,
    updated_at       timestamptz
);
INSERT INTO webhook_policy (singleton) VALUES (true);

-- Every way a delivery row is created (send, resend, seal after sign-off) enqueues its
-- webhook jobs in the same transaction; the NOTIFY wakes the workers at commit.
CREATE FUNCTION enqueue_webhook_jobs() RETURNS trigger
LANGUAGE plpgsql SET search_path = sealhub, pg_catalog AS $$
BEGIN
    INSERT INTO webhook_jobs (id, webhook, delivery, state, next_attempt_at, created_at)
    SELECT gen_random_uuid(), w.id, n.id, 'pending', n.created_at, n.created_at
    FROM new_deliveries n
    JOIN webhooks w ON w.department = n.recipient AND w.deleted_at IS NULL
    ON CONFLICT (webhook, delivery) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('sealhub_webhooks', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_enqueue_webhooks
    AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_webhook_jobs();
