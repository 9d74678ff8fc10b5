-- Portable SQL: the same statements run on SQLite and PostgreSQL through sqlx's `Any`
-- driver. Hence TEXT ids made by the server (no SERIAL / AUTOINCREMENT), BIGINT Unix
-- seconds, JSON kept as TEXT, no BLOBs (envelopes and payloads live in the
-- content-addressed blob directory), no booleans (BIGINT 0/1).

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    -- SHA-256 of the token, hex: the token itself is never stored.
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    vendor_id TEXT NOT NULL,
    class_id TEXT NOT NULL,
    sequence_number BIGINT NOT NULL,
    -- SHA-256 (hex) of the envelope in the blob store.
    envelope_sha256 TEXT NOT NULL,
    -- The manifest digest of the authentication wrapper (hex), as reports name it.
    manifest_digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- JSON array of the SHA-256 digests (hex) of the images the manifest names.
    images TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- The operator who approved the release for campaigns (NULL: not yet).
    approved_by TEXT,
    approved_at BIGINT,
    UNIQUE (vendor_id, class_id, sequence_number)
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    -- SubjectPublicKeyInfo PEM of the device's P-256 report key.
    public_key TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    vendor_id TEXT NOT NULL,
    class_id TEXT NOT NULL,
    -- JSON object of string values.
    attributes TEXT NOT NULL,
    sequence_number BIGINT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    last_seen BIGINT
);

CREATE TABLE enrolment_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE device_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- JSON object {attribute: value}; NULL for a static group.
    filter TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES device_groups (id),
    device_id TEXT NOT NULL,
    PRIMARY KEY (group_id, device_id)
);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    release_id TEXT NOT NULL REFERENCES releases (id),
    group_id TEXT NOT NULL REFERENCES device_groups (id),
    -- JSON array of cumulative percentages, ascending, ending at 100.
    phases TEXT NOT NULL,
    phase BIGINT NOT NULL,
    phase_started_at BIGINT NOT NULL,
    success_percent BIGINT NOT NULL,
    max_failures BIGINT,
    max_failure_percent BIGINT,
    device_timeout_secs BIGINT NOT NULL,
    -- running | paused | cancelled | completed
    state TEXT NOT NULL,
    reason TEXT,
    -- Failures already counted when the campaign was last resumed.
    failure_baseline BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE campaign_devices (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    device_id TEXT NOT NULL REFERENCES devices (id),
    -- Position in the rollout order: phase k covers ordinals below its cut.
    ordinal BIGINT NOT NULL,
    -- pending | offered | succeeded | failed | timed_out
    state TEXT NOT NULL,
    -- The nonce the device's report must carry (hex), set when the release is offered.
    nonce TEXT,
    offered_at BIGINT,
    finished_at BIGINT,
    reason TEXT,
    PRIMARY KEY (campaign_id, device_id)
);

CREATE INDEX campaign_devices_by_device ON campaign_devices (device_id);

CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    campaign_id TEXT REFERENCES campaigns (id),
    received_at BIGINT NOT NULL,
    success BIGINT NOT NULL,
    reason_code BIGINT,
    -- The signed report as received (COSE_Sign1, hex).
    body TEXT NOT NULL
);
