"""`make demo`: the tap run by Meltano into DuckDB against the sample API."""
