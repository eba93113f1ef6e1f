"""Tests for one round only: `@pytest.mark.round_only(1)` (PgBouncer on db1) or `round_only(2)` (on every application
host, after side_effect), on a test or as a file's pytestmark. pytest deselects them in the other round, and says how
many."""

from split_layout import placement


def pytest_configure(config):
    config.addinivalue_line("markers", "round_only(n): runs in round n of the split scenario only")


def pytest_collection_modifyitems(config, items):
    this_round = 2 if placement() == "app" else 1
    other = [item for item in items
             if item.get_closest_marker("round_only") and item.get_closest_marker("round_only").args[0] != this_round]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]
