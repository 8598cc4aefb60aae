-- jobsmith schema for SQLite, version 9: rate limits per queue (see PostgreSQL's migration 10).
-- `starts` is a JSON array of milliseconds since the epoch, rewritten by every rate-limited
-- fetch inside its write transaction.
ALTER TABLE __P__queues ADD COLUMN rate_limit INTEGER CHECK (rate_limit > 0);
ALTER TABLE __P__queues ADD COLUMN rate_window_ms INTEGER CHECK (rate_window_ms > 0);

CREATE TABLE __P__rate_logs (
    queue  TEXT NOT NULL,
    key    TEXT NOT NULL DEFAULT '',
    starts TEXT NOT NULL,
    PRIMARY KEY (queue, key)
);
