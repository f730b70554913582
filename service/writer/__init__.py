"""The store's writer process (SQLite) and an ingress process's link to it."""
