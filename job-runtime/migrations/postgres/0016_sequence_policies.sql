-- jobsmith schema, version 16: a failure policy for one sequence (ADR 27).
--
-- A sequenced queue's policy (queues.sequence_policy) holds for every partition without a row
-- here; a row chooses `wait` or `continue` for that one sequence. Read by the fetch's head probe
-- (one primary-key probe per partition it walks in a sequenced queue), so a change reaches every
-- node's next fetch.
CREATE TABLE __SCHEMA__.sequence_policies (
    queue      text        NOT NULL,
    key        text        COLLATE "C" NOT NULL,
    policy     text        NOT NULL CHECK (policy IN ('wait', 'continue')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, key)
);
