-- The audit event of a delivery's 签收 or 退回, kept on the delivery: the countersignature
-- needs that event's log index, and when the gateway stopped between the decision's commit
-- and storing the countersignature, a retry of the same receipt (or a read of it) finishes
-- the job from here.
ALTER TABLE deliveries ADD COLUMN decision_event bigint;

-- Decisions made before this migration: their event, found by its delivery id.
UPDATE deliveries d SET decision_event = e.event
  FROM (SELECT outbox_id AS event, convert_from(details, 'UTF8')::jsonb ->> 'delivery' AS delivery
          FROM audit_log
         WHERE type IN ('delivery.received', 'delivery.rejected') AND details IS NOT NULL
        UNION ALL
        SELECT id, details ->> 'delivery'
          FROM audit_outbox
         WHERE type IN ('delivery.received', 'delivery.rejected')) e
 WHERE d.receipt_jws IS NOT NULL AND d.decision_event IS NULL AND e.delivery = d.id::text;
