-- One database and one owner per service: no service reads another's data.
-- The owners' passwords are set by 20-passwords.sh from the environment.
CREATE ROLE intake LOGIN;
CREATE ROLE medical LOGIN;
CREATE ROLE education LOGIN;
CREATE ROLE housing LOGIN;
CREATE ROLE temporary LOGIN;
CREATE DATABASE onedoor_intake OWNER intake;
CREATE DATABASE onedoor_medical OWNER medical;
CREATE DATABASE onedoor_education OWNER education;
CREATE DATABASE onedoor_housing OWNER housing;
CREATE DATABASE onedoor_temporary OWNER temporary;
