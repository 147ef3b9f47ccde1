"""Helpers shared by test modules."""


def without_seconds(value):
    """Return a results dict without its timing fields (keys named "seconds")."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value
