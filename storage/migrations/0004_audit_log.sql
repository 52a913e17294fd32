-- The append-only audit log (RFC 9162 Merkle tree), its checkpoints and witnesses' cosignatures.
-- The sequencer (one process at a time, under an advisory lock) moves events from
-- audit_outbox into audit_log with gap-free indices and stores every perfect subtree root
-- in audit_nodes, all in one transaction per batch.

CREATE TABLE audit_log (
    idx              bigint PRIMARY KEY CHECK (idx >= 0),
    outbox_id        bigint NOT NULL UNIQUE,
    type             text NOT NULL,
    at               timestamptz NOT NULL,
    actor_official   text,
    actor_jkt        text,
    department       text,
    document         text,
    -- The exact RFC 8785 bytes whose leaf hash is in the tree.
    leaf             bytea NOT NULL,
    details_hash     bytea NOT NULL CHECK (length(details_hash) = 32),
    -- Canonical details and salt; both NULL once erased (details_hash stays in the leaf).
    details          bytea,
    salt             bytea CHECK (salt IS NULL OR length(salt) = 16),
    erased_at        timestamptz,
    sequenced_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((details IS NULL) = (salt IS NULL))
);
CREATE INDEX audit_log_document ON audit_log (document, idx) WHERE document IS NOT NULL;
CREATE INDEX audit_log_department ON audit_log (department, idx);
CREATE INDEX audit_log_actor ON audit_log (actor_official, idx) WHERE actor_official IS NOT NULL;
CREATE INDEX audit_log_type ON audit_log (type, idx);
CREATE INDEX audit_log_at ON audit_log (at);

-- Root of the perfect subtree over leaves [idx * 2^level, (idx + 1) * 2^level); level 0 holds
-- the leaf hashes. Written once, when the subtree becomes complete.
CREATE TABLE audit_nodes (
    level  smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx    bigint NOT NULL CHECK (idx >= 0),
    hash   bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Every checkpoint is kept: a C2SP signed note and an RFC 3161 token over SHA-256(note).
CREATE TABLE audit_checkpoints (
    id               bigserial PRIMARY KEY,
    tree_size        bigint NOT NULL CHECK (tree_size >= 0),
    root_hash        bytea NOT NULL CHECK (length(root_hash) = 32),
    note             text NOT NULL,
    timestamp_token  bytea NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size, id);

-- Witness signatures (one line of a C2SP signed note) over a checkpoint's text.
CREATE TABLE audit_cosignatures (
    id             bigserial PRIMARY KEY,
    checkpoint_id  bigint NOT NULL REFERENCES audit_checkpoints (id),
    official       text,
    verifier_key   text NOT NULL CHECK (length(verifier_key) <= 300),
    signature_line text NOT NULL CHECK (length(signature_line) <= 400),
    tree_size      bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    UNIQUE (checkpoint_id, verifier_key)
);
CREATE INDEX audit_cosignatures_witness ON audit_cosignatures (verifier_key, tree_size);

-- Unauthenticated failures, one counter per (source, minute): a flood becomes one audit
-- entry per source and minute plus this count.
CREATE TABLE audit_failure_minutes (
    source      text NOT NULL CHECK (length(source) <= 100),
    minute      timestamptz NOT NULL,
    count       integer NOT NULL CHECK (count > 0),
    last_kind   text NOT NULL CHECK (length(last_kind) <= 64),
    PRIMARY KEY (source, minute)
);
CREATE INDEX audit_failure_minutes_minute ON audit_failure_minutes (minute);

-- The application may add to the log but never change or remove it: grants first, and a
-- trigger in case a later GRANT (or default privilege) gives more than intended.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_nodes, audit_checkpoints, audit_cosignatures
    FROM sealhub_app;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'sealhub_owner' THEN
        RAISE EXCEPTION 'the audit log is append-only (% on % by %)',
            TG_OP, TG_TABLE_NAME, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_cosignatures_append_only BEFORE UPDATE OR DELETE ON audit_cosignatures
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_cosignatures_no_truncate BEFORE TRUNCATE ON audit_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Wake the sequencer when events commit (NOTIFY is delivered at commit, once per
-- transaction and channel).
CREATE FUNCTION audit_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sealhub_audit_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER audit_outbox_wake AFTER INSERT ON audit_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION audit_outbox_notify();
