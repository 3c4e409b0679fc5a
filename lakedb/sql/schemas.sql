-- The layers of the lake, one DuckDB schema each, one view per table: bronze
-- and dead_letters from the consumer, silver and gold from the refiner.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS dead_letters;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;
