-- Directory of organisation units and distribution groups.
ALTER DEFAULT PRIVILEGES IN SCHEMA sealhub GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sealhub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA sealhub GRANT USAGE, SELECT ON SEQUENCES TO sealhub_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA sealhub GRANT EXECUTE ON FUNCTIONS TO sealhub_app;

CREATE DOMAIN org_code AS text CHECK (VALUE ~ '^[a-z0-9][a-z0-9.-]{0,62}$');

CREATE TABLE departments (
    code        org_code PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    name_en     text NOT NULL DEFAULT '' CHECK (length(name_en) <= 300),
    parent      org_code REFERENCES departments (code) DEFERRABLE INITIALLY DEFERRED,
    kind        text NOT NULL CHECK (kind ~ '^[a-z_]{1,32}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent IS NULL OR parent <> code)
);
CREATE INDEX departments_parent ON departments (parent, code);
CREATE INDEX departments_kind ON departments (kind, code);

CREATE TABLE groups (
    code        org_code PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_code       org_code NOT NULL REFERENCES groups (code) ON DELETE CASCADE,
    department_code  org_code NOT NULL REFERENCES departments (code),
    PRIMARY KEY (group_code, department_code)
);
CREATE INDEX group_members_department ON group_members (department_code);

-- Department and group codes share one namespace: a group code stands wherever a
-- department code is accepted as a recipient, so the two may never collide.
CREATE FUNCTION org_code_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'departments' THEN
        PERFORM 1 FROM groups WHERE code = NEW.code;
    ELSE
        PERFORM 1 FROM departments WHERE code = NEW.code;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'code % is already used', NEW.code USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER departments_code_unique BEFORE INSERT ON departments
    FOR EACH ROW EXECUTE FUNCTION org_code_unique();
CREATE TRIGGER groups_code_unique BEFORE INSERT ON groups
    FOR EACH ROW EXECUTE FUNCTION org_code_unique();
