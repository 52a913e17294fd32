-- Outbox writers wake the sequencer only while it sleeps.
--
-- A NOTIFY takes one cluster-wide lock (AccessExclusiveLock on object 0 of pg_database) at
-- commit and keeps it until the commit record is flushed, so when every outbox transaction
-- notified, committers queued behind each other's WAL flush and group commit was lost (with
-- 8 writers: 7 of them waiting on that lock, half of all backend samples in wait event
-- Lock/object, writer throughput 1.7x lower).
--
-- Now a writer takes the "sequencer is awake" advisory lock (key 0x5EA1A0D2) in shared mode
-- until the end of its transaction, which costs no NOTIFY. The sequencer goes to sleep only
-- by taking that lock exclusively without waiting (storage/audit_log.py: start_sleeping),
-- which succeeds only when no writer is between its insert and its commit; it then checks the
-- outbox is empty and holds the lock while it sleeps. A writer that cannot get the shared lock
-- (the sequencer sleeps) notifies, as before. So no event is left unannounced: either its
-- writer notified, or the sequencer's check after taking the lock sees it committed.
CREATE OR REPLACE FUNCTION audit_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock_shared(1587650770::bigint) THEN
        PERFORM pg_notify('sealhub_audit_outbox', '');
    END IF;
    RETURN NULL;
END $$;
