-- jobsmith schema, version 10: rate limits per queue (ADR 22).
--
-- A queue's rate limit is a persisted setting like its global limit: at most `rate_limit` jobs
-- started in any window of `rate_window_ms`, across all nodes. Both columns are set or neither.
ALTER TABLE __SCHEMA__.queues
    ADD COLUMN rate_limit integer CHECK (rate_limit > 0),
    ADD COLUMN rate_window_ms bigint CHECK (rate_window_ms > 0),
    ADD CONSTRAINT queues_rate_limit_whole CHECK ((rate_limit IS NULL) = (rate_window_ms IS NULL));

-- The starts within the current window of each rate-limited queue (`key` '' for the whole
-- queue), in milliseconds since the epoch by the server's clock: read and rewritten by every
-- rate-limited fetch under the queue's advisory lock, so it never holds more than the limit.
CREATE TABLE __SCHEMA__.rate_logs (
    queue  text     NOT NULL,
    key    text     NOT NULL DEFAULT '',
    starts bigint[] NOT NULL,
    PRIMARY KEY (queue, key)
);
