-- jobsmith schema, version 12: partitioned queues (ADR 24).
--
-- A job's partition (a tenant, an insurer): set at insert from the field its type names, or by
-- hand; NULL for a job of no partition. A queue with a partition limit runs at most that many
-- jobs of each partition at once, across all nodes, and takes its partitions in turn.
-- In the "C" collation: partitions are walked in byte order, the order the runtime compares
-- them in (and SQLite's), whatever the database's default collation.
ALTER TABLE __SCHEMA__.jobs ADD COLUMN partition_key text COLLATE "C";

-- The next partition with work and the head of each, one index probe each. Partial on a key
-- being set: jobs of no partition (every job of a queue that is not partitioned) never enter it,
-- so they pay nothing for it.
CREATE INDEX jobs_partition_fetch_idx ON __SCHEMA__.jobs (queue, partition_key, priority, scheduled_at, id)
    WHERE state = 'available' AND partition_key IS NOT NULL;

ALTER TABLE __SCHEMA__.queues ADD COLUMN partition_limit integer CHECK (partition_limit > 0);
