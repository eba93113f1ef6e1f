"""pytest plugin for every scenario's testinfra run (the base config loads it with PYTEST_ADDOPTS).

A test marked `changes_the_host` runs after every other test of the scenario, in the order written:
it changes what the others look at (a live settings change, removing the instance, stopping a replica).
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "changes_the_host: runs after every other test, because it changes what they look at")


def pytest_collection_modifyitems(items):
    # sort() is stable: unmarked tests keep their order, then the marked ones in theirs.
    items.sort(key=lambda item: item.get_closest_marker("changes_the_host") is not None)
