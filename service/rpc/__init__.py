"""The gRPC API: servicers, and the conversions and error mapping they share."""
