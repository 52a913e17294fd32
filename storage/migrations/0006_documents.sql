-- Official documents and their deliveries (one row per recipient department).
CREATE TABLE documents (
    id               uuid PRIMARY KEY,
    sender           org_code NOT NULL REFERENCES departments (code),
    created_by       text NOT NULL,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    doc_number       text NOT NULL CHECK (length(doc_number) BETWEEN 1 AND 100),
    doc_year         integer NOT NULL CHECK (doc_year BETWEEN 1949 AND 9999),
    urgency          text NOT NULL CHECK (urgency IN ('normal', 'urgent', 'very_urgent')),
    classification   text NOT NULL CHECK (classification IN ('public', 'internal')),
    deadline         timestamptz,
    status           text NOT NULL CHECK (status IN ('in_approval', 'awaiting_seal', 'returned',
                                                     'dispatched', 'withdrawn')),
    draft_object     text NOT NULL,
    draft_sha256     text NOT NULL CHECK (draft_sha256 ~ '^[0-9a-f]{64}$'),
    draft_size       bigint NOT NULL,
    sealed_object    text,
    sealed_sha256    text CHECK (sealed_sha256 ~ '^[0-9a-f]{64}$'),
    sealed_size      bigint,
    seal_id          uuid REFERENCES seals (id),
    sealed_by        text,
    created_at       timestamptz NOT NULL,
    dispatched_at    timestamptz,
    withdrawn_at     timestamptz,
    UNIQUE (sender, doc_year, doc_number)
);
CREATE INDEX documents_sender ON documents (sender, created_at DESC);

CREATE TABLE deliveries (
    id             uuid PRIMARY KEY,
    seq            bigserial UNIQUE,
    document       uuid NOT NULL REFERENCES documents (id),
    recipient      org_code NOT NULL REFERENCES departments (code),
    copy           boolean NOT NULL DEFAULT false,
    state          text NOT NULL CHECK (state IN ('pending', 'fetched', 'received', 'rejected',
                                                  'withdrawn')),
    created_at     timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    fetched_at     timestamptz,
    decided_at     timestamptz,
    decided_by     text,
    reason         text,
    receipt_jws    text,
    countersigned  text,
    UNIQUE (document, recipient)
);
CREATE INDEX deliveries_inbox ON deliveries (recipient, seq);
CREATE INDEX deliveries_open_due ON deliveries (due_at) WHERE state IN ('pending', 'fetched');

-- Idempotency-Key records, scoped to (official, method, path).
CREATE TABLE idempotency_keys (
    official      text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  text NOT NULL,
    status        integer NOT NULL,
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (official, method, path, key)
);
