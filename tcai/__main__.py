"""`python -m tcai`."""

from tcai.cli.main import main

main()
