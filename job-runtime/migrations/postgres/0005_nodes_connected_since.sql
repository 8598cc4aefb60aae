-- jobsmith schema, version 5: since when each node has been connected without a break.
--
-- A node's heartbeat resets `connected_since` when its previous heartbeat is older than the
-- reconnect gap (the node was cut off). Rescue runs only for a rescuer connected for a whole node
-- TTL, judged by the database's clock as the rescue statement runs: after an outage every node's
-- heartbeat looks old, and one still reconnecting cannot be told from a dead one (ADR 4).
ALTER TABLE __SCHEMA__.nodes ADD COLUMN connected_since timestamptz NOT NULL DEFAULT now();
