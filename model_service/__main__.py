"""Entry point: ``python -m model_service [flags]``."""

from model_service.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
