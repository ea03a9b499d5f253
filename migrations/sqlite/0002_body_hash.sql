-- Each statement text is logged once, however it is signed: the SHA-256 of the note's
-- signed text. Rows from before this column are filled in by the server at start-up.
ALTER TABLE entries ADD COLUMN body_hash BLOB;
CREATE UNIQUE INDEX entries_body_hash ON entries (body_hash);
