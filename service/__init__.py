"""The JeriCommerce loyalty service: webhook ingress, event store, gRPC API."""
