-- Approval workflows (拟稿 → 核稿 → 签发 → 用印): the draft's versions, the ordered steps
-- and every signed decision. Nothing here is ever deleted: a returned draft's history stays.

-- What the seal keeper dispatches once the chain is signed off (groups are expanded then).
CREATE TABLE workflows (
    document    uuid PRIMARY KEY REFERENCES documents (id),
    recipients  text[] NOT NULL,
    cc          text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);

CREATE TABLE workflow_steps (
    document   uuid NOT NULL REFERENCES workflows (document),
    step       integer NOT NULL CHECK (step >= 0),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    mode       text NOT NULL CHECK (mode IN ('all', 'any')),
    assignees  text[] NOT NULL CHECK (cardinality(assignees) >= 1),
    PRIMARY KEY (document, step),
    UNIQUE (document, name)
);

-- Every draft a drafter submitted; documents.draft_* always mirrors the newest one.
CREATE TABLE document_versions (
    document      uuid NOT NULL REFERENCES documents (id),
    version       integer NOT NULL CHECK (version >= 1),
    draft_object  text NOT NULL,
    draft_sha256  text NOT NULL CHECK (draft_sha256 ~ '^[0-9a-f]{64}$'),
    draft_size    bigint NOT NULL,
    submitted_by  text NOT NULL,
    submitted_at  timestamptz NOT NULL,
    PRIMARY KEY (document, version)
);

-- One signed decision per official, step and version; the JWS is kept as evidence and its
-- jti may be spent once only (a signature over an unchanged resubmitted draft cannot be
-- replayed onto the new version).
CREATE TABLE approvals (
    id          uuid PRIMARY KEY,
    document    uuid NOT NULL,
    version     integer NOT NULL,
    step        integer NOT NULL,
    official    text NOT NULL REFERENCES officials (id),
    kid         text NOT NULL,
    decision    text NOT NULL CHECK (decision IN ('approve', 'reject')),
    opinion     text NOT NULL DEFAULT '' CHECK (length(opinion) <= 4000),
    signature   text NOT NULL,
    jti         text NOT NULL UNIQUE,
    signed_at   timestamptz NOT NULL,
    decided_at  timestamptz NOT NULL,
    FOREIGN KEY (document, version) REFERENCES document_versions (document, version),
    FOREIGN KEY (document, step) REFERENCES workflow_steps (document, step),
    UNIQUE (document, version, step, official)
);
CREATE INDEX approvals_document ON approvals (document, decided_at);
