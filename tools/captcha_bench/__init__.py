"""`make bench`: cold start and warm latency of the built functions against a naive handler."""
