-- jobsmith schema, version 13: rate limits for each partition of a queue (ADR 25).
ALTER TABLE __P__queues ADD COLUMN rate_per_partition INTEGER NOT NULL DEFAULT 0 CHECK (rate_per_partition IN (0, 1));
