-- Reminder jobs are found by a typed query on their args (`SendReminder::query()
-- .appointment_id(id)`) in the clinic's own transactions, so the clinic keeps no job ids.
DROP TABLE clinic_reminders;
