-- Officials, their enrolled public keys, login state (refresh families, replay table)
-- and the counters behind rate limits and failed-login supervision.

CREATE TABLE officials (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f-]{36}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    department  org_code NOT NULL REFERENCES departments (code),
    roles       text[] NOT NULL CHECK (roles <@ ARRAY['admin', 'dept_admin', 'clerk', 'leader',
                    'seal_keeper', 'inspector', 'system']::text[]),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX officials_department ON officials (department, id);

-- One pending code per official: issuing a new code replaces the old one.
CREATE TABLE enrollment_codes (
    official_id      text PRIMARY KEY REFERENCES officials (id) ON DELETE CASCADE,
    code_hash        text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    failed_attempts  integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    used_at          timestamptz
);

-- kid is the RFC 7638 thumbprint: the primary key makes one thumbprint belong to one
-- official for ever (a revoked key keeps its row, so it can never be re-enrolled).
CREATE TABLE official_keys (
    kid          text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{43}$'),
    official_id  text NOT NULL REFERENCES officials (id),
    public_jwk   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX official_keys_official ON official_keys (official_id, created_at);

CREATE TABLE refresh_families (
    id           text PRIMARY KEY,
    official_id  text NOT NULL REFERENCES officials (id),
    kid          text NOT NULL REFERENCES official_keys (kid),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    revoke_reason text
);
CREATE INDEX refresh_families_official ON refresh_families (official_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_families_kid ON refresh_families (kid) WHERE revoked_at IS NULL;

-- Refresh tokens are stored as SHA-256 of the opaque token; a used row stays until the
-- family expires so a second use is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    family_id   text NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Single-use values (challenge nonces, assertion jti, DPoP jti per key, enrollment
-- proof jti), kept until the value could no longer be accepted anyway.
CREATE TABLE used_once (
    kind        text NOT NULL CHECK (kind IN ('nonce', 'assertion', 'dpop', 'enroll')),
    scope       text NOT NULL CHECK (length(scope) <= 256),
    value       text NOT NULL CHECK (length(value) <= 256),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, scope, value)
);
CREATE INDEX used_once_expires ON used_once (expires_at);

-- Fixed-window counters shared by every gateway process.
CREATE TABLE rate_counters (
    bucket        text NOT NULL CHECK (length(bucket) <= 300),
    window_start  timestamptz NOT NULL,
    count         integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);

-- Failed authentication attempts, one row per (minute, source, kind, subject): a flood
-- of failures bumps a counter instead of writing one audit event per attempt. The first
-- failure of a row also writes one login.failed audit event (see gateway/auth.py).
CREATE TABLE auth_failures (
    minute      timestamptz NOT NULL,
    source      text NOT NULL CHECK (length(source) <= 64),
    kind        text NOT NULL CHECK (kind IN ('login', 'enroll', 'token', 'refresh')),
    subject     text NOT NULL DEFAULT '' CHECK (length(subject) <= 64),
    count       integer NOT NULL,
    last_reason text NOT NULL,
    PRIMARY KEY (minute, source, kind, subject)
);
CREATE INDEX auth_failures_subject ON auth_failures (subject, minute) WHERE subject <> '';

-- Small gateway secrets (the challenge nonce HMAC key), wrapped under the master key so
-- every process sharing the database and the master key uses the same one.
CREATE TABLE gateway_secrets (
    name        text PRIMARY KEY,
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL
);
