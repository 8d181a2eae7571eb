-- Reports by time: the status page's reports per minute and the numbers most
-- reported in the last day read only the recent end of this index.
CREATE INDEX reports_received_at_idx ON reports (received_at);
