-- jobsmith schema, version 9: resumable steps.
--
-- `ctx.step(name, work)` records the value of each step a job finished, guarded like a result
-- (still executing, by this node, in this attempt), so a later attempt of the same job gets the
-- value back instead of doing the work again. One row per (job, step), gone with its job.
CREATE TABLE __SCHEMA__.steps (
    job_id      bigint      NOT NULL REFERENCES __SCHEMA__.jobs (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    output      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, name)
);
