-- Every notification sent, and every failure to send one.
CREATE TABLE notifications (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  job_id     text NOT NULL,          -- the remediation run (runs.job_id)
  notifier   text NOT NULL,          -- slack | pagerduty
  event_type text NOT NULL,          -- RunEvent.type
  seq        integer,
  state      text NOT NULL CHECK (state IN ('sent', 'retrying', 'failed', 'ignored')),
  attempt    integer NOT NULL,
  detail     jsonb,
  error      text
);
CREATE INDEX notifications_job ON notifications (job_id, id);
