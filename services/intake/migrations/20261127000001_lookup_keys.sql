-- The register, the open lines and the case list find people by the keyed
-- hash of their ID numbers (ADR 0015), never by the numbers: those columns
-- now hold `Keyring::lookup` values, and the register keeps no names. The
-- hash needs the key-encryption key, which the database never sees, so rows
-- written before are re-keyed by intake at start-up (`store::rekey_lookups`).
ALTER TABLE household_members DROP COLUMN name;
