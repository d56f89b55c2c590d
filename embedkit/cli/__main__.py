"""`python -m embedkit.cli`: what the launcher runs in each training worker."""

from embedkit.cli.entrypoint import main

main()
