-- jobsmith schema, version 12: a queue's partition limit (ADR 24), a persisted setting.
ALTER TABLE __P__queues ADD COLUMN partition_limit INTEGER CHECK (partition_limit > 0);
