-- custody lineage store, schema version 1 (SQLite). Keep equivalent to ../postgres/0001_lineage.sql.
--
-- Times are UTC text in one fixed format, YYYY-MM-DDTHH:MM:SS.ffffffZ (normalised by custody
-- before insert), so text order is time order and range queries are the same on both backends.
-- Text compares byte-wise (SQLite's default BINARY collation). Lists (reasons, log indexes) are
-- JSON text.
--
-- Digests are interned: each distinct image digest is one row of `digests`, and events refer to
-- it by id. Every event lands at a random place of a digest index; small integer keys keep those
-- indexes several times smaller than 71-character text keys, which is most of the cost of a write
-- (and of the file size). Ids are never reused: rows are only ever added.
-- No foreign keys are declared: custody writes the ids itself, in the same transaction.

CREATE TABLE digests (
    id     INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE                  -- algorithm:hex, checked by custody
);

CREATE TABLE verdicts (
    id                INTEGER PRIMARY KEY,
    occurred_at       TEXT NOT NULL,
    image             TEXT NOT NULL,
    digest_id         INTEGER NOT NULL,          -- digests.id
    environment       TEXT,
    policy            TEXT NOT NULL,
    policy_hash       TEXT NOT NULL,
    trust_root_hash   TEXT NOT NULL,
    decision          TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'error')),
    reasons           TEXT NOT NULL,
    signer            TEXT,
    issuer            TEXT,
    source_repository TEXT,
    source_ref        TEXT,
    source_commit     TEXT,
    workflow          TEXT,
    run               TEXT,
    builder           TEXT,
    sbom_digest       TEXT,
    log_indexes       TEXT NOT NULL
);
-- lineage(digest)
CREATE INDEX verdicts_by_digest ON verdicts (digest_id, id);
-- by_commit(prefix), search by commit prefix
CREATE INDEX verdicts_by_commit ON verdicts (source_commit, digest_id);
-- by_signer(identity): keyset on digest id
CREATE INDEX verdicts_by_signer ON verdicts (signer, digest_id);

CREATE TABLE promotions (
    id              INTEGER PRIMARY KEY,
    occurred_at     TEXT NOT NULL,
    repository      TEXT NOT NULL,
    environment     TEXT NOT NULL,
    delivery_commit TEXT NOT NULL,
    pull_request    TEXT,
    image           TEXT NOT NULL,
    from_digest_id  INTEGER,                     -- digests.id
    to_digest_id    INTEGER NOT NULL,            -- digests.id
    kind            TEXT NOT NULL CHECK (kind IN ('promotion', 'rollback', 'auto-update'))
);
-- lineage(digest): promotions to and away from it, environments reached
CREATE INDEX promotions_by_to_digest ON promotions (to_digest_id);
CREATE INDEX promotions_by_from_digest ON promotions (from_digest_id);
-- at(environment, time): per image, latest at or before time
CREATE INDEX promotions_by_environment ON promotions (environment, image, occurred_at);
-- search by delivery commit prefix
CREATE INDEX promotions_by_commit ON promotions (delivery_commit);

CREATE TABLE admissions (
    id          INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    workload    TEXT NOT NULL,
    image       TEXT NOT NULL,
    digest_id   INTEGER,                         -- digests.id; NULL: the reference had no digest
    outcome     TEXT NOT NULL
);
-- lineage(digest) (newest first), environments reached, "was it admitted"
CREATE INDEX admissions_by_digest ON admissions (digest_id, occurred_at);
-- at(environment, time): the cluster is the admission's environment
CREATE INDEX admissions_by_cluster ON admissions (cluster, image, occurred_at);

-- Every image name seen: search by substring scans this small table, not the events.
CREATE TABLE images (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;
