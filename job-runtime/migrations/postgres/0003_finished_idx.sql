-- jobsmith schema, version 3: the (state, id) index becomes an index of finished rows only.
--
-- Every index a state change touches costs a write per job: the old index held an entry for every
-- row in every state, so each insert, fetch and result added one. Waiting rows are already found
-- through jobs_fetch_idx and jobs_stage_idx, executing ones through jobs_executing_idx; only
-- pruning and listings of finished rows needed this one. Measured in docs/benchmarks.md.
DROP INDEX __SCHEMA__.jobs_state_idx;

CREATE INDEX jobs_finished_idx ON __SCHEMA__.jobs (state, id)
    WHERE state IN ('completed', 'discarded', 'cancelled');
