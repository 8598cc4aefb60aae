-- The clinic's own tables (jobsmith keeps its tables in the `jobsmith` schema).
-- Times are BIGINT unix seconds so the same queries run on PostgreSQL and SQLite; only this DDL
-- differs between the two engines.

CREATE TABLE clinic_patients (
    id             BIGINT PRIMARY KEY,
    name           TEXT   NOT NULL,
    email          TEXT   NOT NULL,
    -- Appointments this patient missed before: the strongest input of the no-show risk.
    prior_no_shows BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE clinic_appointments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id  BIGINT NOT NULL REFERENCES clinic_patients (id),
    starts_at   BIGINT NOT NULL,
    status      TEXT   NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
    reschedules BIGINT NOT NULL DEFAULT 0,
    booked_at   BIGINT NOT NULL
);

-- One row per reminder job ever booked, written in the same transaction as the job, so a cancel
-- or reschedule knows exactly which jobs to cancel.
CREATE TABLE clinic_reminders (
    job_id         BIGINT PRIMARY KEY,
    appointment_id BIGINT NOT NULL REFERENCES clinic_appointments (id),
    kind           TEXT   NOT NULL,
    -- The clinic time the reminder is for (the appointment's start minus the lead time).
    due_at         BIGINT NOT NULL,
    status         TEXT   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'cancelled')),
    email_job_id   BIGINT
);
CREATE INDEX clinic_reminders_pending ON clinic_reminders (appointment_id) WHERE status = 'pending';

CREATE TABLE clinic_risk_scores (
    appointment_id BIGINT PRIMARY KEY REFERENCES clinic_appointments (id),
    score          BIGINT NOT NULL,
    scored_at      BIGINT NOT NULL,
    job_id         BIGINT NOT NULL
);

CREATE TABLE clinic_benefits (
    patient_id  BIGINT PRIMARY KEY REFERENCES clinic_patients (id),
    plan        TEXT   NOT NULL,
    copay_cents BIGINT NOT NULL,
    synced_at   BIGINT NOT NULL
);
