"""`python -m monitor` is the `repwatch` command."""
from monitor.cli import main

main()
