-- Passkeys (WebAuthn) as a second factor of console logins, and per-department settings
-- (issue 19). The tables get the app login's rights from the default privileges of 0001.

-- What an enrolled key is: a key file of the SDK or CLI ("file"), or a non-extractable
-- WebCrypto key of the console ("browser", a "console key"). Passkeys concern console keys.
ALTER TABLE official_keys
    ADD COLUMN device_kind text NOT NULL DEFAULT 'file' CHECK (device_kind IN ('browser', 'file')),
    ADD COLUMN label text CHECK (label IS NULL OR length(label) BETWEEN 1 AND 100),
    ADD COLUMN last_used_at timestamptz;

-- The passkey state of a login travels with its refresh family (and its access tokens).
ALTER TABLE refresh_families
    ADD COLUMN passkey text NOT NULL DEFAULT 'not_required'
        CHECK (passkey IN ('verified', 'setup_required', 'not_required'));

-- A registration challenge is redeemed once.
ALTER TABLE used_once DROP CONSTRAINT used_once_kind_check;
ALTER TABLE used_once ADD CONSTRAINT used_once_kind_check
    CHECK (kind IN ('nonce', 'assertion', 'dpop', 'enroll', 'passkey'));

-- One credential belongs to one official for ever (a removed passkey keeps its row).
CREATE TABLE passkeys (
    id                uuid PRIMARY KEY,
    official_id       text NOT NULL REFERENCES officials (id),
    credential_id     bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 16 AND 1023),
    public_key        bytea NOT NULL,
    sign_count        bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    label             text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    transports        text[] NOT NULL DEFAULT '{}',
    registered_with   text NOT NULL REFERENCES official_keys (kid),
    created_at        timestamptz NOT NULL,
    last_used_at      timestamptz,
    revoked_at        timestamptz
);
CREATE INDEX passkeys_official ON passkeys (official_id, created_at);

-- A department without a row has the defaults.
CREATE TABLE department_settings (
    department        org_code PRIMARY KEY REFERENCES departments (code),
    passkey_required  boolean NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL,
    updated_by        text REFERENCES officials (id)
);
