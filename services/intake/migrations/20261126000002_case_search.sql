-- The window finds a case by its number or by the applicant's ID number
-- (exact match only, within the clerk's township).
ALTER TABLE case_views ADD COLUMN applicant_id_number text;
UPDATE case_views v
   SET applicant_id_number = e.payload -> 'application' -> 'applicant' ->> 'id_number'
  FROM events e
 WHERE e.stream_id = v.case_id::text
   AND e.version = 1
   AND e.payload ->> 'type' = 'ApplicationSubmitted';
CREATE INDEX case_views_by_applicant ON case_views (township, applicant_id_number)
    WHERE applicant_id_number IS NOT NULL;
