-- The key that sealed each entry, by fingerprint, so that the key can be
-- rotated: new entries are sealed with the current key, older ones verify
-- with the retired key that sealed them. Entries sealed before this column
-- existed have none (any key of the ring may verify them). The trigger
-- already refuses any change to a sealed entry; sealing sets key_id with
-- seq and the hashes.
ALTER TABLE audit_trail ADD COLUMN key_id text;
