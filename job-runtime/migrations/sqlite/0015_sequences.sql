-- jobsmith schema, version 15: sequenced queues (ADR 27).
ALTER TABLE __P__queues ADD COLUMN sequence_policy TEXT CHECK (sequence_policy IN ('wait', 'continue'));

CREATE INDEX __P__jobs_sequence_idx ON __P__jobs (queue, partition_key, id)
    WHERE partition_key IS NOT NULL AND state IN ('available', 'scheduled', 'retryable', 'executing', 'discarded');
