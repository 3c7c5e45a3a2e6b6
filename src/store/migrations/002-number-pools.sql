-- Sender number pools (e.g. WhatsApp Business phone numbers) and their rotation history.
-- Runs with search_path set to remediator's schema: names here are unqualified.

-- One row per number. A pool may have one or several `active` numbers; `spare` numbers are the
-- hot spares a rotation promotes; `cooling` numbers rest until cooling_until (48-72h after a
-- quality drop or a rate limit) and then become spare again; `disabled` ones are never used.
CREATE TABLE sender_numbers (
  id              bigserial PRIMARY KEY,
  pool            text NOT NULL CHECK (pool ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'),
  -- The provider's id of the number (WhatsApp Cloud API phone_number_id); alerts name numbers by it.
  provider_id     text NOT NULL UNIQUE CHECK (provider_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  -- E.164: "+", country code, subscriber number; 7 to 15 digits, no leading zero.
  number          text NOT NULL UNIQUE CHECK (number ~ '^\+[1-9][0-9]{6,14}$'),
  state           text NOT NULL CHECK (state IN ('active', 'spare', 'cooling', 'disabled')),
  cooling_until   timestamptz,
  -- The last time the number stopped being active (rotated out or disabled while active):
  -- the spare unused for longest (NULL = never used) is promoted first.
  last_active_at  timestamptz,
  last_rotated_at timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT cooling_has_end CHECK (state <> 'cooling' OR cooling_until IS NOT NULL)
);
CREATE INDEX sender_numbers_pool ON sender_numbers (pool, id);
CREATE INDEX sender_numbers_cooling ON sender_numbers (cooling_until) WHERE state = 'cooling';

-- One row per rotation. run_id is unique: a run rotates at most once, and a retry of the same
-- run (hook failed) finds its own committed rotation here instead of rotating again.
CREATE TABLE number_rotations (
  id                   bigserial PRIMARY KEY,
  pool                 text NOT NULL,
  retired_provider_id  text NOT NULL,
  retired_number       text NOT NULL,
  promoted_provider_id text NOT NULL,
  promoted_number      text NOT NULL,
  cooling_until        timestamptz NOT NULL,
  run_id               text NOT NULL UNIQUE,
  rule                 text,
  attempt              integer,
  reason               text,
  at                   timestamptz NOT NULL,
  -- The sending application's hook: NULL until it answered 2xx (or when the pool has no hook,
  -- see hook_required).
  hook_required        boolean NOT NULL DEFAULT false,
  hook_delivered_at    timestamptz,
  hook_attempts        integer NOT NULL DEFAULT 0,
  hook_last_error      text
);
CREATE INDEX number_rotations_pool ON number_rotations (pool, at DESC);
CREATE INDEX number_rotations_retired ON number_rotations (retired_provider_id, at DESC);

-- What the sending application reads: the numbers it may send from, per pool.
CREATE VIEW active_sender_numbers AS
  SELECT pool, provider_id, number
  FROM sender_numbers
  WHERE state = 'active';
