"""Benchmarks (not tests): crawl throughput against a generated local site, recrawl cost."""
