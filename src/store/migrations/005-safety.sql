-- Operators in control (src/safety): whether a successful fix held, and what people decided.

-- Set once per successful run, when the next firing of the same rule on the same target shows
-- whether the fix held: 'ineffective' when the alert fired again (or had not resolved) within the
-- rule's verify_window after the run; 'effective' otherwise.
ALTER TABLE runs ADD COLUMN fix_verdict text CHECK (fix_verdict IN ('effective', 'ineffective'));
CREATE INDEX runs_rule_target ON runs (rule, target, finished_at DESC) WHERE state = 'succeeded';

-- Every decision people (or PagerDuty on their behalf) took about automation: pauses, resumes,
-- lifted quarantines, human acknowledgments, quarantines themselves.
CREATE TABLE operator_actions (
  id      bigserial PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  kind    text NOT NULL,      -- pause | resume | quarantine | lift | human_ack | human_ack_released
  scope   text NOT NULL,      -- all | rule:NAME | action:NAME | target:NAME | rule:NAME@TARGET | pagerduty:DEDUPKEY
  by_whom text NOT NULL,      -- who: "admin-api:NAME", "cli:USER", "slack:U123", "pagerduty:PUSER"
  reason  text,
  details jsonb
);
CREATE INDEX operator_actions_at ON operator_actions (at DESC);
