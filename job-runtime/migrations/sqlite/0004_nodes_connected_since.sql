-- jobsmith schema for SQLite, version 4: since when each node has been connected without a
-- break, in milliseconds (see migrations/postgres/0005_nodes_connected_since.sql for why).
ALTER TABLE __P__nodes ADD COLUMN connected_since INTEGER NOT NULL DEFAULT 0;
