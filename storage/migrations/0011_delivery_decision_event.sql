-- The audit event of a delivery's 签收 or 退回, kept on the delivery: the countersignature
-- needs that event's log index, and when the gateway stopped between the decision's commit
-- and storing the countersignature, a retry of the same receipt (or a read of it) finishes
-- the job from here.
ALTER TABLE deliveries ADD COLUMN decision_event bigint;
