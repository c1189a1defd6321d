"""``importers.sync.repost`` rebuilds exactly the ledger that sync posted (SQLite and PostgreSQL).

Repost derives entries in-process for small stores and in forked workers for large ones
(``_PARALLEL_MIN``); both paths, the account-limited one, and a refused (unbalanced) entry are
checked against the synced journal's export, byte for byte.
"""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

import importers.sync as sync_mod
from importers.sync import repost
from ledger.bulk import allocate_ids
from ledger.db import make_engine
from ledger.journal import Entry, Leg, UnbalancedEntry

from .helpers import cli, db_counts, journal_digest, write_config


@pytest.fixture()
def synced(db_url, sim, tmp_path, capsys):
    config = write_config(tmp_path, sim.accounts, sim.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet", "--no-check", "--no-prices")  # repost rebuilds postings, unvalued
    assert code == 0, err
    engine = make_engine(db_url)
    try:
        yield config, engine, journal_digest(capsys, config, db_url, tmp_path / "synced.csv"), db_counts(db_url)
    finally:
        engine.dispose()


def _schema(engine) -> dict:
    insp = inspect(engine)
    return {t: (sorted(i["name"] for i in insp.get_indexes(t)), sorted(fk["name"] for fk in insp.get_foreign_keys(t)),
                sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t))) for t in ("journal_entries", "postings")}


def _alter_some_entries(monkeypatch, change) -> None:
    """Repost with ``change`` applied to the first entry of every 50th raw record (several, in
    different batches and workers), in parallel however small the store."""
    real = sync_mod.extract

    def altered(endpoint, record, src):
        x = real(endpoint, record, src)
        if x.entries and src.raw_id % 50 == 7:
            return type(x)(x.status, (change(x.entries[0]),), x.note)
        return x

    monkeypatch.setattr(sync_mod, "extract", altered)
    monkeypatch.setattr(sync_mod, "_PARALLEL_MIN", 0)


@pytest.mark.parametrize("processes", [0, 2])
def test_repost__rebuilds_the_synced_ledger_exactly(synced, db_url, tmp_path, capsys, monkeypatch, processes):
    config, engine, digest, counts = synced
    schema = _schema(engine)
    monkeypatch.setattr(sync_mod, "_PARALLEL_MIN", 0)
    assert repost(engine, processes=processes, batch=97) == counts["raw_records"]
    assert journal_digest(capsys, config, db_url, tmp_path / "all.csv") == digest
    assert db_counts(db_url) == counts
    assert _schema(engine) == schema  # indexes, foreign keys and unique keys are back
    assert ("uq_journal_entries_entry_key", ("entry_key",)) in schema["journal_entries"][2]
    with engine.begin() as conn:  # the next entry a sync posts gets an unused id
        assert allocate_ids(conn, "journal_entries", 1)[0] > conn.exec_driver_sql("SELECT MAX(id) FROM journal_entries").scalar_one()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []

    assert repost(engine, venue_account="sub1", processes=processes, batch=50) < counts["raw_records"]
    assert journal_digest(capsys, config, db_url, tmp_path / "sub1.csv") == digest
    assert db_counts(db_url) == counts


@pytest.mark.parametrize("processes", [0, 2])
def test_repost__an_unbalanced_entry_writes_nothing(synced, db_url, tmp_path, capsys, monkeypatch, processes):
    config, engine, digest, counts = synced

    def unbalanced(e: Entry) -> Entry:
        return e._replace(legs=(*e.legs[:-1], Leg(e.legs[-1].account, e.legs[-1].asset, e.legs[-1].quantity + 1)))

    _alter_some_entries(monkeypatch, unbalanced)
    with pytest.raises(UnbalancedEntry):
        repost(engine, processes=processes, batch=97)
    assert journal_digest(capsys, config, db_url, tmp_path / "after.csv") == digest
    assert db_counts(db_url) == counts


@pytest.mark.parametrize("processes", [0, 2])
def test_repost__a_duplicate_entry_key_writes_nothing(synced, db_url, tmp_path, capsys, monkeypatch, processes):
    """The entries' unique key holds through a rebuild: on PostgreSQL it is re-added before the commit
    (``ledger.bulk.journal_rebuild``), on SQLite enforced row by row; either way nothing is written."""
    from sqlalchemy.exc import IntegrityError

    config, engine, digest, counts = synced
    schema = _schema(engine)
    _alter_some_entries(monkeypatch, lambda e: e._replace(key="the-same-key"))
    with pytest.raises(IntegrityError):
        repost(engine, processes=processes, batch=97)
    assert journal_digest(capsys, config, db_url, tmp_path / "after.csv") == digest
    assert db_counts(db_url) == counts
    assert _schema(engine) == schema
