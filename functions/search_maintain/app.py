"""Search maintenance (hourly): compaction, new rows into the indexes, the ANN index once the table
is large enough, old versions dropped (reelscope.search.engine.maintain)."""

from reelscope.cloud.lambda_runtime import lambda_handler
from reelscope.search import engine


@lambda_handler("search_maintain")
def handler(event, settings):
    return engine.maintain()
