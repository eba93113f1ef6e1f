"""Round-two-only test files (ROUND_TWO_ONLY = True in the module) are collected only after side_effect has moved
PgBouncer to the application hosts: in round one pytest deselects them, and says how many."""

from split_layout import placement


def pytest_collection_modifyitems(config, items):
    if placement() == "app":
        return
    later = [item for item in items if getattr(item.module, "ROUND_TWO_ONLY", False)]
    if later:
        config.hook.pytest_deselected(items=later)
        items[:] = [item for item in items if item not in later]
