-- jobsmith schema, version 14: weights of partitions (ADR 26).
--
-- A partition with a weight gives that many jobs in each turn of a partitioned fetch where a
-- partition without one gives one. Read by the fetch (one primary-key probe per partition it
-- walks), so a change reaches every node's next fetch.
CREATE TABLE __SCHEMA__.partition_weights (
    queue      text        NOT NULL,
    key        text        COLLATE "C" NOT NULL,
    weight     integer     NOT NULL CHECK (weight BETWEEN 1 AND 100),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, key)
);
