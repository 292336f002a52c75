"""What leaves the system: one enqueue for webhook and e-mail rows, the outbox worker
that delivers them with retries, and the signed webhook itself."""
