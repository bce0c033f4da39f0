"""repwatch service: config, scoring, rules, crawl orchestration, scheduling, CLI."""
