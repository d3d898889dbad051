-- How far each stream type's events were checked for personal fields an
-- earlier release stored in the clear (`sealing::seal_plain_events`, run at
-- start-up): the next pass goes on from there.
CREATE TABLE sealing_passes (
    stream_type     text   PRIMARY KEY,
    checked_through bigint NOT NULL
);
