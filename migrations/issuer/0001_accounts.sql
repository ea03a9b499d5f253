-- The issuer's accounts (standing in for the app's login) and how many tokens each was
-- issued per UTC day (SQLite and PostgreSQL alike). Nothing about the tokens themselves.
CREATE TABLE accounts (
    account     TEXT   PRIMARY KEY,
    secret_hash TEXT   NOT NULL,
    daily_limit BIGINT NOT NULL
);
CREATE TABLE issued (
    account TEXT   NOT NULL REFERENCES accounts (account),
    day     BIGINT NOT NULL,
    tokens  BIGINT NOT NULL,
    PRIMARY KEY (account, day)
);
