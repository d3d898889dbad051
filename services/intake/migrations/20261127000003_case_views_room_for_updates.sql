-- A case's list row is rewritten at every change of the case (each lane
-- report: about sixteen times in an application's life). With full pages
-- every rewrite goes to another page and adds an entry to each of the
-- table's seven indexes. Room left in each page lets PostgreSQL keep the new
-- version beside the old one (a HOT update: no index entry, less WAL, less
-- to vacuum) whenever the indexed columns did not change, which is nearly
-- always. Pages filled before this keep no room until they are rewritten.
ALTER TABLE case_views SET (fillfactor = 70);
