"""The demo's parts (scripts/demo.py is the tour): what it sends, how it
sends and checks it, and how it finds or starts the service."""
