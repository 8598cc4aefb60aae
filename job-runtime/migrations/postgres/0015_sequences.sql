-- jobsmith schema, version 15: sequenced queues (ADR 27).
--
-- A sequenced queue runs each partition's jobs one at a time in insertion (id) order: a job
-- starts only when it is its partition's first job that has not finished. `wait`: a discarded job
-- has not finished (it holds its sequence until retried, cancelled or deleted); `continue`: it has.
ALTER TABLE __SCHEMA__.queues ADD COLUMN sequence_policy text CHECK (sequence_policy IN ('wait', 'continue'));

-- A partition's first unfinished job, one probe. Partial: finished rows leave it (discarded ones
-- stay, for `wait`), and jobs of no partition never enter it.
CREATE INDEX jobs_sequence_idx ON __SCHEMA__.jobs (queue, partition_key, id)
    WHERE partition_key IS NOT NULL AND state IN ('available', 'scheduled', 'retryable', 'executing', 'discarded');

-- The partitions' rate logs (ADR 25) are looked up by a partition key, which is in the "C"
-- collation: the log's key in the same collation, so that probe uses the primary key on a
-- database whose default collation is another (the queue's own log, key '', is unaffected).
ALTER TABLE __SCHEMA__.rate_logs ALTER COLUMN key TYPE text COLLATE "C";
