"""Bring a database's schema to the newest migration. Alembic is the only way it is made."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    if not (_ROOT / "migrations" / "env.py").is_file():
        raise RuntimeError(
            f"Parley's migrations are not beside the package ({_ROOT}); install Parley from "
            "its source folder with `pip install -e .`."
        )
    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "migrations"))
    # ConfigParser interpolation would read a '%' in a password as a directive.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(database_url: str) -> None:
    """Run in a thread with no event loop: Alembic's env runs its own."""
    command.upgrade(alembic_config(database_url), "head")
