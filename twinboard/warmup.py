"""`python -m twinboard.warmup`: compile and cache the fast decoder during set-up."""
from __future__ import annotations


def main() -> None:
    try:
        from twinboard import fastscan  # noqa: F401  (present once fast ingest lands)
    except ImportError:
        return
    fastscan.warm()


if __name__ == "__main__":
    main()
