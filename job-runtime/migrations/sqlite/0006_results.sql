-- jobsmith schema for SQLite, version 6: recorded results (see the PostgreSQL migration 7 for
-- why a table of their own). SQLite enforces foreign keys only on connections that ask for it,
-- so a trigger removes a job's result with the job (pruning, deleting), whichever connection
-- deletes it. It runs for deleted rows only; fetches and results never fire it.
CREATE TABLE __P__results (
    job_id      INTEGER PRIMARY KEY,
    output      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL
);

CREATE TRIGGER __P__results_follow_their_job AFTER DELETE ON __P__jobs
BEGIN
    DELETE FROM __P__results WHERE job_id = OLD.id;
END;
