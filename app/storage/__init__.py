"""Storage: the schema and the data access of each aggregate. Imports nothing above it."""
