-- jobsmith schema for SQLite, version 8: resumable steps (see PostgreSQL's migration 9), gone
-- with their job by a delete trigger as results are (migration 6 says why a trigger).
CREATE TABLE __P__steps (
    job_id      INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    output      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);

CREATE TRIGGER __P__steps_follow_their_job AFTER DELETE ON __P__jobs
BEGIN
    DELETE FROM __P__steps WHERE job_id = OLD.id;
END;
