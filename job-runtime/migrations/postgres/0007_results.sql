-- jobsmith schema, version 7: recorded results.
--
-- A job fn returning `Result<T, E>` records its `T` when it completes, written by the same
-- statement as the completion (see `ack_recorded`). A table of its own, not a column of the
-- job's row or its meta: the runtime writes the row (fetch, results, rescue) and a result must
-- never race those writes; and jobs without results, nearly all, pay nothing for it. The row
-- goes with its job (ON DELETE CASCADE), so pruning and deleting keep no orphan results.
CREATE TABLE __SCHEMA__.results (
    job_id      bigint      PRIMARY KEY REFERENCES __SCHEMA__.jobs (id) ON DELETE CASCADE,
    output      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
