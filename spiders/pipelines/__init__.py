"""Item pipelines, one per module: normalize (here), then dedupe and store."""
