"""Where the read models live: SQL tables per generation (SQLite, PostgreSQL)."""
