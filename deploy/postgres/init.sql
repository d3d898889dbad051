-- One database and one owner per service: no service reads another's data.
CREATE ROLE intake LOGIN PASSWORD 'intake';
CREATE ROLE medical LOGIN PASSWORD 'medical';
CREATE ROLE education LOGIN PASSWORD 'education';
CREATE ROLE housing LOGIN PASSWORD 'housing';
CREATE ROLE temporary LOGIN PASSWORD 'temporary';
CREATE DATABASE onedoor_intake OWNER intake;
CREATE DATABASE onedoor_medical OWNER medical;
CREATE DATABASE onedoor_education OWNER education;
CREATE DATABASE onedoor_housing OWNER housing;
CREATE DATABASE onedoor_temporary OWNER temporary;
