"""nbval set-up for the notebooks, whichever way they are collected (`make test`,
`make notebooks-test`, or `pytest --nbval book/X.ipynb`)."""

# nbval waits a hard-coded 5 s for each output message after a cell's reply (nbval issues #136 and
# #231: not configurable). On a loaded 2-core machine one long cell of the FAQ once timed out there
# after it had finished; the wait is only for messages already sent, so a longer one costs nothing.
OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(config, items) -> None:
    """Give nbval's cells a longer wait for their last outputs (a hung cell still fails at
    --nbval-cell-timeout)."""
    for item in items:
        if hasattr(item, "output_timeout"):  # an nbval cell
            item.output_timeout = OUTPUT_TIMEOUT_S
