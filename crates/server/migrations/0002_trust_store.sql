-- The fleet's trust store (docs/server.md, "The fleet's trust store"): when the server
-- runs with --trust-store, every store it has adopted, newest in force. The signed store
-- itself lives in the blob directory under its SHA-256.
CREATE TABLE trust_stores (
    version BIGINT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    -- The release whose approval adopted it (NULL: the store given at start).
    release_id TEXT,
    adopted_at BIGINT NOT NULL
);

-- A release that carries a new trust store (component ["suitcase", "trust-store"]): the
-- store's SHA-256 in the blob directory, adopted when the release is approved.
ALTER TABLE releases ADD COLUMN trust_store_sha256 TEXT;
