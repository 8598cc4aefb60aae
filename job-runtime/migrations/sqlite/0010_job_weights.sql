-- jobsmith schema, version 10: job weights (ADR 23). See the PostgreSQL migration 0011.
ALTER TABLE __P__jobs ADD COLUMN weight INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000);
