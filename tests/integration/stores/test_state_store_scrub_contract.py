"""Erasure's sweep of the state store, run over every backend: the customer's distinctive PII goes from every
text and binary cell, names only from the customer's own rows, and other customers' data stays."""

from __future__ import annotations

import orjson

from agents.state_repository import AgentStateRepository
from data.postgres_db import is_postgres_url
from data.privacy.postgres_scrub import pii_in_postgres, scrub_postgres
from data.privacy.registry import ERASED
from data.privacy.scrub import PiiValues, scrub_sqlite
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.sqlite_files import sqlite_path

EMAIL, NAME = "quinton.marlowe@example.com", "Quintonworth"


def _fill(url: str) -> None:
    store = open_state_store(url)
    with store.transaction() as conn:
        ProfileProjection().create_tables(conn)
        conn.execute("create table if not exists leads (customer_id text primary key, email text, first_name text)")
        conn.executemany("insert into leads (customer_id, email, first_name) values (?, ?, ?)",
                         [("c1", EMAIL, NAME), ("c2", "other@example.com", NAME)])
        conn.execute("insert into profiles (customer_id, state) values (?, ?)",
                     ("c1", orjson.dumps({"email": EMAIL, "name": NAME}).decode()))
    store.close()
    repo = AgentStateRepository.open(url, "agent:journey:0of1")
    repo.save({"c1": {"note": f"wrote to {EMAIL}"}, "c2": {"note": "nothing"}}, position=1)
    repo.close()


def _scrub(url: str, values: PiiValues) -> int:
    if is_postgres_url(url):
        return scrub_postgres(url, "c1", values).cells
    return scrub_sqlite(sqlite_path(url), "c1", values).cells


def test_the_sweep_removes_the_customers_pii_and_keeps_the_rest(store_url: str) -> None:
    _fill(store_url)
    if is_postgres_url(store_url):  # what a Pub/Sub erasure gathers from the store before the key goes
        assert sorted(pii_in_postgres(store_url, "c1")) == [("email", EMAIL), ("first_name", NAME)]
    cells = _scrub(store_url, PiiValues.of([("email", EMAIL), ("first_name", NAME)]))
    assert cells == 5  # leads.email and .first_name (c1's row), the profile's email and name, the agent record
    store = open_state_store(store_url)
    with store.reading() as conn:
        leads = {r[0]: tuple(r[1:]) for r in conn.execute("select customer_id, email, first_name from leads").fetchall()}
        profile = conn.execute("select state from profiles where customer_id = ?", ("c1",)).fetchone()[0]
    store.close()
    assert leads == {"c1": (ERASED, ERASED), "c2": ("other@example.com", NAME)}  # c2's name is not c1's PII
    assert EMAIL not in profile and NAME not in profile
    repo = AgentStateRepository.open(store_url, "agent:journey:0of1")
    assert repo.records() == {"c1": {"note": f"wrote to {ERASED}"}, "c2": {"note": "nothing"}}
    repo.close()
