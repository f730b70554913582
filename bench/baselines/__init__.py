"""Bare-framework servers: the ceiling each benchmark's ratio is taken against."""
