-- jobsmith schema, version 11: job weights (ADR 23).
--
-- How many of its queue's slots one run of the job takes: counted against the node's limit by
-- the fetch (which takes jobs in run order while their weights fit) and against the queue's
-- global limit (the sum of the executing rows' weights). A constant default: no table rewrite.
ALTER TABLE __SCHEMA__.jobs
    ADD COLUMN weight smallint NOT NULL DEFAULT 1 CONSTRAINT jobs_weight_range CHECK (weight BETWEEN 1 AND 1000);
