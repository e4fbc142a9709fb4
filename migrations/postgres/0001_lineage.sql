-- custody lineage store, schema version 1 (PostgreSQL). Keep equivalent to ../sqlite/0001_lineage.sql.
--
-- Times are UTC text in one fixed format, YYYY-MM-DDTHH:MM:SS.ffffffZ (normalised by custody
-- before insert), so text order is time order and range queries are the same on both backends.
-- Every compared text column uses the "C" collation: byte order like SQLite's BINARY whatever the
-- database's locale, and plain B-tree indexes serve prefix ranges. Lists (reasons, log indexes)
-- are JSON text.
--
-- Digests are interned: each distinct image digest is one row of `digests`, and events refer to
-- it by id (see the SQLite file for why). No foreign keys: custody writes the ids itself, in the
-- same transaction, and a key check per event row would cost a lookup and a row lock.
--
-- Tables are created in the first schema of the search_path (see custody::store docs:
-- `?options=-csearch_path%3Dmyschema`).

CREATE TABLE digests (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest TEXT COLLATE "C" NOT NULL UNIQUE
);

CREATE TABLE verdicts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at       TEXT COLLATE "C" NOT NULL,
    image             TEXT COLLATE "C" NOT NULL,
    digest_id         BIGINT NOT NULL,
    environment       TEXT COLLATE "C",
    policy            TEXT COLLATE "C" NOT NULL,
    policy_hash       TEXT COLLATE "C" NOT NULL,
    trust_root_hash   TEXT COLLATE "C" NOT NULL,
    decision          TEXT COLLATE "C" NOT NULL CHECK (decision IN ('allow', 'deny', 'error')),
    reasons           TEXT NOT NULL,
    signer            TEXT COLLATE "C",
    issuer            TEXT COLLATE "C",
    source_repository TEXT COLLATE "C",
    source_ref        TEXT COLLATE "C",
    source_commit     TEXT COLLATE "C",
    workflow          TEXT COLLATE "C",
    run               TEXT COLLATE "C",
    builder           TEXT COLLATE "C",
    sbom_digest       TEXT COLLATE "C",
    log_indexes       TEXT NOT NULL
);
CREATE INDEX verdicts_by_digest ON verdicts (digest_id, id);
CREATE INDEX verdicts_by_commit ON verdicts (source_commit, digest_id);
CREATE INDEX verdicts_by_signer ON verdicts (signer, digest_id);

CREATE TABLE promotions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     TEXT COLLATE "C" NOT NULL,
    repository      TEXT COLLATE "C" NOT NULL,
    environment     TEXT COLLATE "C" NOT NULL,
    delivery_commit TEXT COLLATE "C" NOT NULL,
    pull_request    TEXT COLLATE "C",
    image           TEXT COLLATE "C" NOT NULL,
    from_digest_id  BIGINT,
    to_digest_id    BIGINT NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL CHECK (kind IN ('promotion', 'rollback', 'auto-update'))
);
CREATE INDEX promotions_by_to_digest ON promotions (to_digest_id);
CREATE INDEX promotions_by_from_digest ON promotions (from_digest_id);
CREATE INDEX promotions_by_environment ON promotions (environment, image, occurred_at);
CREATE INDEX promotions_by_commit ON promotions (delivery_commit);

CREATE TABLE admissions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at TEXT COLLATE "C" NOT NULL,
    cluster     TEXT COLLATE "C" NOT NULL,
    namespace   TEXT COLLATE "C" NOT NULL,
    workload    TEXT COLLATE "C" NOT NULL,
    image       TEXT COLLATE "C" NOT NULL,
    digest_id   BIGINT,
    outcome     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX admissions_by_digest ON admissions (digest_id, occurred_at);
CREATE INDEX admissions_by_cluster ON admissions (cluster, image, occurred_at);

CREATE TABLE images (
    name TEXT COLLATE "C" PRIMARY KEY
);
