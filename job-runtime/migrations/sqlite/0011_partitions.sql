-- jobsmith schema, version 11: partitioned queues (ADR 24). See the PostgreSQL migration 0012;
-- the queues column is migration 12, so that this one only adds to the jobs table (migration 5
-- rebuilds that table, and its tests apply the later ones that add to it again).
ALTER TABLE __P__jobs ADD COLUMN partition_key TEXT;
CREATE INDEX __P__jobs_partition_fetch ON __P__jobs (queue, partition_key, priority, scheduled_at, id)
    WHERE state = 'available' AND partition_key IS NOT NULL;
