"""pytest plugin for every scenario's testinfra run (the base config loads it with PYTEST_ADDOPTS).

A test marked `changes_the_host` runs after every other test of the scenario, in the order written:
it changes what the others look at (a live settings change, removing the instance, stopping a replica).
`changes_the_host(after=N)` runs after the marked tests with a smaller N (0 by default): a test that breaks what the
other marked tests need (a promoted replica) goes after them.
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "changes_the_host: runs after every other test, because it changes what they look at")


def pytest_collection_modifyitems(items):
    # sort() is stable: unmarked tests keep their order, then the marked ones in theirs.
    def rank(item):
        marker = item.get_closest_marker("changes_the_host")
        return (0, 0) if marker is None else (1, marker.kwargs.get("after", 0))

    items.sort(key=rank)
