"""Backtests on the live engine's components: event-driven and vectorised runners,
the cost model, persisted results and validation statistics."""
