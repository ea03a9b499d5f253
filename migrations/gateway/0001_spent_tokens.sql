-- The gateway's spent anonymous tokens (SQLite and PostgreSQL alike). Only the token key id
-- and the client's random nonce, hex: nothing the issuer ever saw.
CREATE TABLE spent_tokens (
    token_key_id TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    PRIMARY KEY (token_key_id, nonce)
);
