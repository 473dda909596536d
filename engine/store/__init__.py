"""The SQLite store: schema and migrations, reads, the run's writer, and the file on disk."""
