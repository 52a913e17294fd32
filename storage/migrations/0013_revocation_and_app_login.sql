-- Key compromise may be dated back: an invalidity date (RFC 5280 5.3.2) before the
-- revocation, asked for with the revocation request and copied to the seal on approval.
ALTER TABLE seal_requests ADD COLUMN invalid_since timestamptz;
ALTER TABLE seal_requests ADD CONSTRAINT seal_requests_invalid_since_key_compromise
    CHECK (invalid_since IS NULL OR (kind = 'revoke' AND reason_code = 'key_compromise'));
ALTER TABLE seals ADD COLUMN invalid_since timestamptz;
ALTER TABLE seals ADD CONSTRAINT seals_invalid_since_revoked
    CHECK (invalid_since IS NULL OR (status = 'revoked' AND invalid_since <= revoked_at));

-- The gateway logs in as its own login (sealhub_app), never as the owner: the audit tables
-- change only for a *session* of the owner (or a superuser), whatever role the statement runs
-- as. current_user alone let any login that could become the owner (SET ROLE, a SECURITY
-- DEFINER function) rewrite the log; session_user is the login and cannot be changed by an
-- unprivileged session.
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_has_role(session_user, 'sealhub_owner', 'MEMBER') THEN
        RAISE EXCEPTION 'the audit log is append-only (% on % by %)',
            TG_OP, TG_TABLE_NAME, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
