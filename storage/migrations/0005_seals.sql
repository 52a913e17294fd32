-- Department e-seals: issued only when a second admin approves a request; the private
-- key lives in the key store (purpose "seal:<id>"), never in this database.
CREATE TABLE seal_requests (
    id            uuid PRIMARY KEY,
    department    org_code NOT NULL REFERENCES departments (code),
    purpose       text NOT NULL CHECK (length(purpose) BETWEEN 1 AND 40),
    kind          text NOT NULL CHECK (kind IN ('issue', 'revoke')),
    seal_id       uuid,
    reason        text CHECK (length(reason) <= 500),
    reason_code   text CHECK (reason_code ~ '^[a-z_]{1,40}$'),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
    decided_by    text,
    decided_at    timestamptz,
    CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK ((kind = 'revoke') = (seal_id IS NOT NULL))
);
CREATE INDEX seal_requests_department ON seal_requests (department, requested_at);

CREATE TABLE seals (
    id               uuid PRIMARY KEY,
    department       org_code NOT NULL REFERENCES departments (code),
    purpose          text NOT NULL,
    kid              text NOT NULL,
    certificate_pem  text NOT NULL,
    serial_number    numeric NOT NULL UNIQUE,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    valid_from       timestamptz NOT NULL,
    valid_to         timestamptz NOT NULL,
    issued_at        timestamptz NOT NULL,
    revoked_at       timestamptz,
    revocation_reason text,
    request_id       uuid NOT NULL REFERENCES seal_requests (id)
);
CREATE INDEX seals_department ON seals (department, issued_at DESC);

-- RFC 3161 serial numbers must be unique for the TSA across every gateway process.
CREATE SEQUENCE tsa_serial_numbers AS bigint;
