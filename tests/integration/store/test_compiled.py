"""app/store/db.py's Compiled and CompiledIn: SQL generated once, run with new values, converted
both ways like a peewee query, on every backend."""

from datetime import datetime

from app.store import db as database
from app.store.db import Compiled, CompiledIn, Slot, db
from app.store.models import Dag, DagVersion, Pool


def spec_of(dag_id: str) -> Compiled:
    return Compiled(
        lambda: (
            DagVersion.select(DagVersion.spec, Dag.created_at)
            .join(Dag)
            .where(Dag.dag_id == Slot("dag_id"))
            .tuples()
        )
    )


def add_dag(dag_id: str, spec: dict, created: datetime) -> None:
    dag = Dag.create(dag_id=dag_id, created_at=created)
    DagVersion.create(dag=dag, version=1, spec=spec, sha256="x" * 64)


def test_rows_are_converted_like_peewee_does(backend):
    query = spec_of("any")
    with db.connection_context():
        add_dag("a", {"tasks": [1, 2]}, datetime(2026, 1, 2, 3, 4, 5, 678000))
        add_dag("b", {"tasks": []}, datetime(2026, 5, 6))
        assert query.rows(dag_id="a") == [
            ({"tasks": [1, 2]}, datetime(2026, 1, 2, 3, 4, 5, 678000))
        ]
        assert query.first(dag_id="b") == ({"tasks": []}, datetime(2026, 5, 6))
        assert query.first(dag_id="c") is None


def test_values_go_through_the_fields_converters_and_rowcount_counts(backend):
    rename = Compiled(
        lambda: Pool.update(description=Slot("text", Pool.description)).where(
            Pool.slots > Slot("more_than")
        )
    )
    with db.connection_context():
        for name, slots in (("small", 1), ("big", 5), ("huge", 9)):
            Pool.create(name=name, slots=slots)
        assert rename.rowcount(text="roomy", more_than=4) == 2
        assert rename.rowcount(text="none", more_than=100) == 0
        assert {p.name for p in Pool.select().where(Pool.description == "roomy")} == {"big", "huge"}


def test_a_list_parameter_compiles_per_length_and_runs_long_lists_uncompiled(backend):
    named = CompiledIn(
        lambda ids, least: (
            Pool.select(Pool.name).where(Pool.name.in_(ids) & (Pool.slots >= least)).tuples()
        ),
        longest=3,
    )
    with db.connection_context():
        for i in range(6):
            Pool.create(name=f"p{i}", slots=i)
        assert sorted(named.rows(["p1", "p4"], least=2)) == [("p4",)]
        assert sorted(named.rows(["p1", "p3", "p5"], least=0)) == [("p1",), ("p3",), ("p5",)]
        assert sorted(named.rows([f"p{i}" for i in range(6)], least=4)) == [("p4",), ("p5",)]
        assert sorted(named._by_length) == [2, 3]  # the list of six ran uncompiled


def test_a_statement_compiles_again_for_another_database(backend, tmp_path):
    count = Compiled(lambda: Pool.select(Pool.name).where(Pool.slots == Slot("slots")).tuples())
    with db.connection_context():
        Pool.create(name="here", slots=3)
        assert count.rows(slots=3) == [("here",)]
    first = db.obj
    other = database.open_database(f"sqlite:///{tmp_path / 'other.db'}")
    db.initialize(other)
    try:
        with db.connection_context():
            db.create_tables([Pool])
            Pool.create(name="there", slots=3)
            assert count.rows(slots=3) == [("there",)]
    finally:
        other.close()
        db.initialize(first)


def test_a_connection_discarded_inside_a_context_reconnects_and_the_context_ends(backend):
    """After a database error, discard_connection() drops the connection inside the worker's
    connection context; the next statement reconnects, and leaving the context no longer
    raises IndexError (peewee had reset the open contexts; seen 56 times in a soak)."""
    from app.store.db import db, discard_connection
    from app.store.models import Dag

    with db.connection_context():
        Dag.select().count()
        discard_connection()
        assert Dag.select().count() == 0  # reconnected
        with db.connection_context():  # nested, as a helper's own context
            discard_connection()
    assert db.is_closed()
