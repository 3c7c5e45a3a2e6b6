-- The audit trail: what was received, what was decided, what ran.
CREATE TABLE alerts (
  id            bigserial PRIMARY KEY,
  received_at   timestamptz NOT NULL,
  fingerprint   text NOT NULL,
  alertname     text,
  status        text NOT NULL,
  starts_at     timestamptz,
  ends_at       timestamptz,
  labels        jsonb NOT NULL,
  annotations   jsonb NOT NULL,
  generator_url text,
  receiver      text NOT NULL,
  group_key     text NOT NULL,
  external_url  text
);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, received_at DESC);

CREATE TABLE decisions (
  id          bigserial PRIMARY KEY,
  alert_id    bigint NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  decided_at  timestamptz NOT NULL,
  fingerprint text NOT NULL,
  rule        text,
  decision    text NOT NULL CHECK (decision IN ('enqueued', 'duplicate', 'no_match', 'not_applicable', 'invalid', 'refused')),
  job_id      text,
  reason      text
);
CREATE INDEX decisions_job ON decisions (job_id);

CREATE TABLE runs (
  job_id        text PRIMARY KEY,
  rule          text NOT NULL,
  action        text NOT NULL,
  target        text,
  fingerprint   text NOT NULL,
  alertname     text,
  starts_at     timestamptz,
  group_key     text,
  dry_run       boolean NOT NULL DEFAULT false,
  state         text NOT NULL CHECK (state IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'skipped', 'dry_run', 'notified')),
  attempts      integer NOT NULL DEFAULT 0,
  queued_at     timestamptz NOT NULL,
  started_at    timestamptz,
  finished_at   timestamptz,
  duration_ms   integer,
  summary       text,
  details       jsonb,
  error_reason  text,
  error_message text,
  alert_resolved_at timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_queued ON runs (queued_at DESC);
CREATE INDEX runs_rule ON runs (rule, queued_at DESC);
CREATE INDEX runs_fingerprint ON runs (fingerprint, rule);
CREATE INDEX runs_target ON runs (action, target, started_at DESC);

CREATE TABLE run_events (
  id       bigserial PRIMARY KEY,
  job_id   text NOT NULL,
  at       timestamptz NOT NULL DEFAULT now(),
  state    text NOT NULL,
  attempt  integer,
  message  text NOT NULL,
  details  jsonb
);
CREATE INDEX run_events_job ON run_events (job_id, id);
