-- smtpgate cluster mode (issue 19): the PostgreSQL schema. clusterd embeds
-- this file at build time and runs it at every connect, in one transaction
-- under an advisory lock (several nodes may connect at once): every
-- statement is idempotent. See clusterd(8).
SELECT pg_advisory_xact_lock(hashtext('smtpgate.schema'));
CREATE SCHEMA IF NOT EXISTS smtpgate;
CREATE TABLE IF NOT EXISTS smtpgate.meta (name text PRIMARY KEY, value text NOT NULL);
INSERT INTO smtpgate.meta (name, value) VALUES ('schema', '1')
  ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS smtpgate.nodes (
  node text PRIMARY KEY, started timestamptz NOT NULL,
  last_seen timestamptz NOT NULL, version text NOT NULL);

-- policy: the mirror of every node's LMDB policy databases (h-cpolicy)
CREATE SEQUENCE IF NOT EXISTS smtpgate.policy_version;
CREATE TABLE IF NOT EXISTS smtpgate.policy (
  kind text NOT NULL,      -- the LMDB database name, or issue_block
  key bytea NOT NULL,      -- the LMDB key, as is
  value bytea,             -- the LMDB value (spool_rec encoding); NULL = deleted
  version bigint NOT NULL DEFAULT nextval('smtpgate.policy_version'),
  origin text NOT NULL,    -- node name that wrote it
  changed timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS policy_version_idx ON smtpgate.policy (version);
-- every write wakes the nodes: NOTIFY smtpgate_policy, '<highest version>'
CREATE OR REPLACE FUNCTION smtpgate.policy_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('smtpgate_policy',
    (SELECT coalesce(max(version), 0) FROM smtpgate.policy)::text);
  RETURN NULL;
END $$;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'policy_notify'
                 AND tgrelid = 'smtpgate.policy'::regclass) THEN
    CREATE TRIGGER policy_notify AFTER INSERT OR UPDATE OR DELETE
      ON smtpgate.policy FOR EACH STATEMENT
      EXECUTE FUNCTION smtpgate.policy_notify();
  END IF;
END $$;

-- the policy journal's high-water mark (clusterd(8) "Policy"): the last
-- journal entry each node's LMDB instance published, set in the publish's
-- own transaction, so an entry published but not yet dropped from the
-- journal (a crash, a failed drop) is never published again
CREATE TABLE IF NOT EXISTS smtpgate.journal_marks (
  node text NOT NULL,      -- cluster_node
  instance text NOT NULL,  -- the LMDB journal's random id (32 hex digits)
  last_seq bigint NOT NULL, -- its last entry published
  digest bytea NOT NULL,   -- SHA-256 of that entry (seq and encoding)
  version bigint NOT NULL, -- smtpgate.policy's top version before it
  updated timestamptz NOT NULL,
  PRIMARY KEY (node, instance));

-- events: every node's delivery log, one partition per UTC day
CREATE TABLE IF NOT EXISTS smtpgate.events (
  dt timestamptz NOT NULL, node text NOT NULL, id bigint NOT NULL,
  account text NOT NULL, type text NOT NULL, issue bigint,
  queue_id text, rcpt text, category text,
  body jsonb NOT NULL,     -- the event exactly as event_log/callbacks carry it
  PRIMARY KEY (dt, node, id)) PARTITION BY RANGE (dt);
CREATE INDEX IF NOT EXISTS events_account_dt_idx ON smtpgate.events (account, dt);
-- spoolctl query --cluster (bench/README.md "Cluster: the stat.uni query on
-- 10 million events"): the seed's request is an account's newest events of
-- one type; an issue's events
CREATE INDEX IF NOT EXISTS events_account_type_dt_idx
  ON smtpgate.events (account, type, dt);
CREATE INDEX IF NOT EXISTS events_issue_dt_idx ON smtpgate.events (issue, dt);
-- smtpgate.events_YYYYMMDD for day d; true if it was created now
CREATE OR REPLACE FUNCTION smtpgate.events_partition(d date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  n text := 'events_' || to_char(d, 'YYYYMMDD');
BEGIN
  IF to_regclass('smtpgate.' || n) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('smtpgate.events_partition'));
  IF to_regclass('smtpgate.' || n) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE smtpgate.%I PARTITION OF smtpgate.events '
    'FOR VALUES FROM (%L) TO (%L)', n,
    (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
  RETURN true;
END $$;
-- drops the day partitions before day `before`; returns their names
CREATE OR REPLACE FUNCTION smtpgate.events_drop_before(before date)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  n text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('smtpgate.events_partition'));
  FOR n IN
    SELECT c.relname FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_namespace s ON s.oid = p.relnamespace
     WHERE s.nspname = 'smtpgate' AND p.relname = 'events'
       AND c.relname ~ '^events_[0-9]{8}$'
       AND to_date(substr(c.relname, 8), 'YYYYMMDD') < before
     ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE smtpgate.%I', n);
    RETURN NEXT n;
  END LOOP;
END $$;

-- per-issue counters, one row per node (clusterd publishes them)
CREATE TABLE IF NOT EXISTS smtpgate.issue_counts (
  account text NOT NULL, issue bigint NOT NULL, node text NOT NULL,
  day date NOT NULL, name text,          -- X-Campaign-Id (NULL: none)
  msgs bigint, rcpts bigint, delivered bigint, deferred bigint,
  bounced bigint, opens bigint, clicks bigint, unsubscribed bigint,
  complained bigint, duplicates bigint,
  counters jsonb NOT NULL,               -- every spool_issue counter by name
  updated timestamptz NOT NULL,
  PRIMARY KEY (account, issue, node));

-- the claim on a node's row (clusterd/cluster_node.c): the random id of
-- the spool (LMDB meta cluster_node_claim) whose clusterd heartbeats it;
-- a second live gateway with the same cluster_node is refused
ALTER TABLE smtpgate.nodes ADD COLUMN IF NOT EXISTS claim text;
