-- jobsmith schema, version 14: weights of partitions (ADR 26).
CREATE TABLE __P__partition_weights (
    queue      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    weight     INTEGER NOT NULL CHECK (weight BETWEEN 1 AND 100),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
