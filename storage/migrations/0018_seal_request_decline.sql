-- A seal request can end without a seal: another admin declines it, or its requester
-- withdraws it (cancelled, like official_requests: nobody decides, so decided_by stays NULL
-- and the requester-is-not-the-decider CHECK holds). 'refused' was never written.
UPDATE seal_requests SET status = 'declined' WHERE status = 'refused';
ALTER TABLE seal_requests DROP CONSTRAINT seal_requests_status_check;
ALTER TABLE seal_requests ADD CONSTRAINT seal_requests_status_check
    CHECK (status IN ('pending', 'approved', 'declined', 'cancelled'));
-- The admins' list of requests, newest first, with or without a status.
CREATE INDEX seal_requests_listed ON seal_requests (status, requested_at DESC, id DESC);
