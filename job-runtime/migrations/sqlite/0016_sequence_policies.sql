-- jobsmith schema, version 16: a failure policy for one sequence (ADR 27).
CREATE TABLE __P__sequence_policies (
    queue      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    policy     TEXT    NOT NULL CHECK (policy IN ('wait', 'continue')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
