-- Lucent log server schema (PostgreSQL). Every integer is a BIGINT.

-- Sequenced entries: the exact statement note bytes, at their index.
CREATE TABLE entries (
    idx        BIGINT  PRIMARY KEY,
    leaf_hash  BYTEA    NOT NULL UNIQUE,
    data       BYTEA    NOT NULL,
    kind       TEXT    NOT NULL,
    lookup     BYTEA    NOT NULL
);
CREATE INDEX entries_lookup ON entries (kind, lookup);

-- Every stored hash of the tree (tlog_tiles' stored hashes), by tree level and index.
CREATE TABLE hashes (
    level BIGINT  NOT NULL,
    idx   BIGINT  NOT NULL,
    hash  BYTEA    NOT NULL,
    PRIMARY KEY (level, idx)
);

-- One row: the size the stored hashes and entries describe. Updated in the sequencer's
-- transaction, so it always matches them.
CREATE TABLE tree_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL
);
INSERT INTO tree_head (id, size) VALUES (1, 0);

-- Signed checkpoints, one per integrated batch. `published` once witnessing is done.
CREATE TABLE checkpoints (
    size       BIGINT  PRIMARY KEY,
    root       BYTEA    NOT NULL,
    note       BYTEA    NOT NULL,
    published  BIGINT  NOT NULL DEFAULT 0,
    created_ms BIGINT  NOT NULL
);
CREATE INDEX checkpoints_published ON checkpoints (published, size);

-- Submissions accepted by a server that is not the sequencer, waiting for it.
CREATE TABLE pending (
    leaf_hash   BYTEA    PRIMARY KEY,
    data        BYTEA    NOT NULL,
    received_ms BIGINT  NOT NULL
);

-- The last size each witness cosigned (the `old` of the next add-checkpoint).
CREATE TABLE witness_state (
    name TEXT    PRIMARY KEY,
    size BIGINT  NOT NULL
);
