"""The service layer: every capability as a function over a typed Config and a session factory; entry points call only this."""
