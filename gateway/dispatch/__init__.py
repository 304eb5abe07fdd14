"""Getting orders out: the outbox, the retry policy, dead letters and replay."""
