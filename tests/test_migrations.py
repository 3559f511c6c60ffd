"""Models and migrations agree, and every migration downgrades and upgrades cleanly."""

from alembic.script import ScriptDirectory

from api import migrate
from tests.conftest import drop_database, fresh_database_url


def test_models_match_migrations(template_database):
    url = template_database if "://" in template_database else f"sqlite:///{template_database}"
    migrate.check(url)  # raises if autogenerate would produce any operation


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    url = fresh_database_url(tmp_path, "roundtrip")
    try:
        script = ScriptDirectory.from_config(migrate.alembic_config())
        revisions = [r.revision for r in script.walk_revisions("base", "heads")][::-1]
        migrate.upgrade(url)
        # Step down one revision at a time, then all the way up again, twice.
        for revision in reversed(revisions):
            migrate.downgrade(url, script.get_revision(revision).down_revision or "base")
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        migrate.upgrade(url)
        migrate.check(url)
    finally:
        drop_database(url)


def test_single_head():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
