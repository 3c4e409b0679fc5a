-- The two layers of the lake, one DuckDB schema each.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS dead_letters;
