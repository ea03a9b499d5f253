-- Lucent log server schema (SQLite). Every integer is a 64-bit INTEGER.

-- Sequenced entries: the exact statement note bytes, at their index.
CREATE TABLE entries (
    idx        INTEGER PRIMARY KEY,
    leaf_hash  BLOB    NOT NULL UNIQUE,
    data       BLOB    NOT NULL,
    kind       TEXT    NOT NULL,
    lookup     BLOB    NOT NULL
);
CREATE INDEX entries_lookup ON entries (kind, lookup);

-- Every stored hash of the tree (tlog_tiles' stored hashes), by tree level and index.
CREATE TABLE hashes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- One row: the size the stored hashes and entries describe. Updated in the sequencer's
-- transaction, so it always matches them.
CREATE TABLE tree_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
);
INSERT INTO tree_head (id, size) VALUES (1, 0);

-- Signed checkpoints, one per integrated batch. `published` once witnessing is done.
CREATE TABLE checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB    NOT NULL,
    note       BLOB    NOT NULL,
    published  INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE INDEX checkpoints_published ON checkpoints (published, size);

-- Submissions accepted by a server that is not the sequencer, waiting for it.
CREATE TABLE pending (
    leaf_hash   BLOB    PRIMARY KEY,
    data        BLOB    NOT NULL,
    received_ms INTEGER NOT NULL
);

-- The last size each witness cosigned (the `old` of the next add-checkpoint).
CREATE TABLE witness_state (
    name TEXT    PRIMARY KEY,
    size INTEGER NOT NULL
);
