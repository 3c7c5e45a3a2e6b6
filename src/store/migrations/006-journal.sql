-- The run journal (src/run/journal.ts). Runs are created when their delivery is taken in, in the
-- same step as their job; a resolution that comes first waits for its run in alert_resolutions.

-- Each delivery stream entry taken in, once: a delivery read again (its worker died before
-- acknowledging it) adds no alert, decision or event twice.
CREATE TABLE deliveries (
  id          text PRIMARY KEY,          -- the delivery stream entry id
  received_at timestamptz NOT NULL
);
CREATE INDEX deliveries_received ON deliveries (received_at);

-- An alert reported resolved, by the job id its firing has (or will have) for each rule.
CREATE TABLE alert_resolutions (
  job_id      text PRIMARY KEY,
  resolved_at timestamptz NOT NULL
);

-- The incident a run belongs to (PagerDuty's dedup key, src/core/run.ts incidentKey), and when a
-- step that changes the target was first recorded (only a run that acted starts a cooldown).
ALTER TABLE runs ADD COLUMN incident_key text;
ALTER TABLE runs ADD COLUMN acted_at timestamptz;
CREATE INDEX runs_incident ON runs (incident_key, queued_at DESC) WHERE incident_key IS NOT NULL;

ALTER TABLE alerts ADD COLUMN delivery_id text;

-- Why an event happened (a failure or skip reason), beside its words.
ALTER TABLE run_events ADD COLUMN reason text;

-- Notifiers follow the journal (src/notifiers): a Slack thread is brought up to date from the run's
-- events (posted_through: the last event it has told), so the per-event sequence is gone.
DROP TABLE slack_events;
ALTER TABLE slack_threads DROP COLUMN delivered_seq;
ALTER TABLE slack_threads ADD COLUMN posted_through bigint NOT NULL DEFAULT 0;
-- digest: the run is counted in its rule's storm summary instead of having a thread of its own.
ALTER TABLE slack_threads ADD COLUMN mode text NOT NULL DEFAULT 'thread' CHECK (mode IN ('thread', 'digest'));
ALTER TABLE notifications DROP COLUMN seq;

-- One row per PagerDuty incident remediator speaks for (dedup key), per routing key: what was
-- sent, so each incident gets one acknowledge, its pages once, and one resolve.
CREATE TABLE pagerduty_incidents (
  dedup_key      text NOT NULL,
  routing        text NOT NULL,           -- the env var holding the routing key (never the key)
  acked_at       timestamptz,
  resolved_at    timestamptz,
  opened_at      timestamptz NOT NULL DEFAULT 'epoch',  -- runs queued before this belong to an earlier cycle
  paged          jsonb NOT NULL DEFAULT '[]',         -- what was paged (run ids, page reasons)
  notes_through  bigint NOT NULL DEFAULT 0,           -- last run event told as an incident note
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dedup_key, routing)
);
