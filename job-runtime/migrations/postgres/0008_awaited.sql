-- jobsmith schema, version 8: telling waiters that a job finished.
--
-- `awaited` is set by a waiter (`Db::wait`) before it looks at the job's state. A row-level
-- trigger whose WHEN clause reads only the new row sends the job's id on the `_finished`
-- channel when an awaited job reaches a final state, by whatever statement (a result, a cancel,
-- a rescue that discards, a hand-written UPDATE), at that statement's commit. Jobs nobody awaits
-- pay one boolean test per state change, and no notification.
ALTER TABLE __SCHEMA__.jobs ADD COLUMN awaited boolean NOT NULL DEFAULT false;

CREATE FUNCTION __SCHEMA__.notify_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('__SCHEMA___finished', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_finished
    AFTER UPDATE OF state ON __SCHEMA__.jobs
    FOR EACH ROW
    WHEN (NEW.awaited AND NEW.state IN ('completed', 'discarded', 'cancelled'))
    EXECUTE FUNCTION __SCHEMA__.notify_finished();
