-- The two layers of the lake, one DuckDB schema each, one view per table.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS dead_letters;
