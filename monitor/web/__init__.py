"""The team inbox on the web (`repwatch web`): an entry point like the CLI, calling only the service layer."""
