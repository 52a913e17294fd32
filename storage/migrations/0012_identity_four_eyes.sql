-- Acts on someone else's identity take two people and name them (issue 16).

-- Who handed out an enrollment code (the manager who received it, or the official itself
-- when it asked with its own key) and, for a four-eyes code, the other manager who agreed.
-- NULL issued_by: the server's command line (local access is the trust anchor).
ALTER TABLE enrollment_codes
    ADD COLUMN issued_by   text REFERENCES officials (id),
    ADD COLUMN cosigned_by text REFERENCES officials (id);

-- Every key remembers the code it came from, so "two admins" can count people: a key whose
-- code passed through an admin's hands may be held by that admin.
ALTER TABLE official_keys
    ADD COLUMN code_issued_by    text REFERENCES officials (id),
    ADD COLUMN code_cosigned_by  text REFERENCES officials (id),
    -- Added through someone else's code to an official that had keys before: alerted to the
    -- department, and shown to the official at its next login with another key.
    ADD COLUMN added_by_other    boolean NOT NULL DEFAULT false,
    ADD COLUMN owner_notified_at timestamptz;
CREATE INDEX official_keys_unnotified ON official_keys (official_id)
    WHERE added_by_other AND owner_notified_at IS NULL;

-- Requests that wait for a second person: a four-eyes enrollment code, a new official with
-- admin, inspector, leader or seal_keeper, a transfer (the receiving department accepts).
CREATE TABLE official_requests (
    id                 uuid PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('enrollment_code', 'create_official', 'transfer')),
    official           text REFERENCES officials (id),
    department         org_code NOT NULL REFERENCES departments (code),
    target_department  org_code REFERENCES departments (code),
    payload            jsonb NOT NULL DEFAULT '{}'::jsonb,
    requested_by       text NOT NULL REFERENCES officials (id),
    requested_with_kid text,
    requested_at       timestamptz NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'approved', 'declined', 'cancelled')),
    decided_by         text REFERENCES officials (id),
    decided_at         timestamptz,
    CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK ((kind = 'create_official') = (official IS NULL)),
    CHECK ((kind = 'transfer') = (target_department IS NOT NULL))
);
-- One pending request of a kind per official.
CREATE UNIQUE INDEX official_requests_pending ON official_requests (kind, official)
    WHERE status = 'pending' AND official IS NOT NULL;
CREATE INDEX official_requests_department ON official_requests (department, requested_at DESC);
CREATE INDEX official_requests_target ON official_requests (target_department, requested_at DESC)
    WHERE target_department IS NOT NULL;

-- The key a seal request was made with: the approver must not have issued its code.
ALTER TABLE seal_requests ADD COLUMN requested_with_kid text;
