-- Slack thread state: one root message per remediation run, edited in place, with the run's
-- events as replies (src/notifiers/slack.ts). Runs with search_path set to remediator's schema.

-- One row per run that has (or is getting) a Slack thread.
CREATE TABLE slack_threads (
  job_id        text PRIMARY KEY,          -- runs.job_id
  channel       text NOT NULL,             -- the channel as configured (name or id) when the thread began
  channel_id    text,                      -- the id Slack answered with (chat.update needs it)
  root_ts       text,                      -- NULL until the root message is posted
  root_state    text,                      -- the run state the root shows now (for the audit and debugging)
  root_hash     text,                      -- hash of the last text+blocks sent: chat.update only on change
  -- Every event with seq <= delivered_seq was delivered or given up on: the next one in order is delivered_seq + 1.
  delivered_seq integer NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per event (seq) of a run that reached the Slack notifier.
CREATE TABLE slack_events (
  job_id        text NOT NULL,
  seq           integer NOT NULL,
  event_type    text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),  -- when a Slack job for it first ran: ordering waits count from here
  reply_ts      text,                                -- the thread reply posted for it (idempotency: never post twice)
  outcome       text CHECK (outcome IN ('delivered', 'given_up')),  -- NULL: not done yet
  note          text,                                -- why it was given up on, or that it was delivered late
  done_at       timestamptz,
  PRIMARY KEY (job_id, seq)
);
