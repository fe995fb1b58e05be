"""Operations: health, readiness, metrics, the worker heartbeat, doctor and logs."""
