-- A code an official asks for with its own key inherits everyone who handled the code of that
-- key, and the key made from it keeps them: otherwise whoever holds someone else's key could
-- re-key that identity "by itself" and count as a second, independent person (issue 16).
ALTER TABLE enrollment_codes
    ADD COLUMN inherited_handlers text[] NOT NULL DEFAULT '{}';
ALTER TABLE official_keys
    ADD COLUMN code_inherited_handlers text[] NOT NULL DEFAULT '{}';
