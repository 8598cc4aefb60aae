-- jobsmith schema, version 13: rate limits for each partition of a queue (ADR 25).
--
-- When set, a queue's rate limit counts the starts of each partition (jobs.partition_key) in a
-- log of its own (`rate_logs.key` the partition) instead of the queue's ('' key).
ALTER TABLE __SCHEMA__.queues ADD COLUMN rate_per_partition boolean NOT NULL DEFAULT false;
