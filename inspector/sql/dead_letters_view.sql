-- Corrupt batches and invalid records of one table. raw_payload stays the
-- lossless BLOB; raw_text is the same bytes as text when they are valid
-- UTF-8 (else NULL), because that is what a person wants to read.
CREATE OR REPLACE VIEW {view} AS
SELECT *, TRY(decode(raw_payload)) AS raw_text
FROM read_parquet(
    {files},
    union_by_name = true
);
