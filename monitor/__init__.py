"""repwatch's service and entry points: config, the scoring core, the service layer, the CLI, daemon and worker."""
