"""Slots: ``max_active_tasks`` per DAG and named pools shared across DAGs.

A worker claims a try only while its DAG and its pool have a free slot, checked and taken
under a lock per DAG and per pool (Postgres advisory locks; on SQLite every write
transaction holds the database's write lock). A try that finds no slot is parked: it stays
``queued`` with no message in flight, and the next try of that DAG or pool to end wakes it.
The clock's lost-message rule is the safety net for a wake-up that never comes.
"""

from dataclasses import dataclass

from peewee import Value, fn

from app.domain.timeutil import utcnow
from app.store import locks
from app.store import transitions as states
from app.store.db import Compiled, Slot, db
from app.store.models import DagRun, Pool, TaskInstance
from app.store.transitions import TaskState


@dataclass(frozen=True)
class Gate:
    dag_pk: int | None
    dag_limit: int | None
    pool: str | None

    @property
    def limited(self) -> bool:
        return bool(self.dag_limit or self.pool)


def gate_of(ti_id: int) -> Gate | None:
    row = (
        TaskInstance.select(TaskInstance.dag_pk, TaskInstance.pool, DagRun.max_active_tasks)
        .join(DagRun)
        .where(TaskInstance.id == ti_id)
        .tuples()
        .first()
    )
    if row is None:
        return None
    dag_pk, pool, dag_limit = row
    return Gate(dag_pk, dag_limit, pool)


CLAIMED, PARKED, DROPPED = "claimed", "parked", "dropped"


def claim(gate: Gate | None, ti_id: int, try_number: int, worker: str, now=None) -> str:
    """Claim the try if a slot is free (CLAIMED), else park it (PARKED); DROPPED: the message
    was a duplicate or stale. Only CLAIMED runs the try."""
    if gate is None or not gate.limited:
        return CLAIMED if states.claim(ti_id, try_number, worker, now) else DROPPED
    with db.atomic():
        _lock(gate)
        # The slot check rides in the claim's UPDATE: one statement, taken under the lock.
        values = dict(ti_id=ti_id, try_number=try_number, worker=worker, now=now or utcnow())
        values.update(dag_pk=gate.dag_pk, dag_limit=gate.dag_limit, pool=gate.pool)
        if _claim_within_slots(bool(gate.dag_limit), bool(gate.pool)).rowcount(**values):
            return CLAIMED
        return PARKED if states.park(ti_id, try_number) else DROPPED


def wake(gate: Gate | None) -> int:
    """After a try of this DAG or pool ended: queue again as many parked tries as there are
    free slots now; returns how many."""
    if gate is None or not gate.limited or not _any_parked(gate):
        return 0
    woken = 0
    with db.atomic():
        _lock(gate)
        free = min(_free_dag_slots(gate), _free_pool_slots(gate))
        for ti in _parked(gate).order_by(TaskInstance.queued_at).limit(max(free, 0)):
            woken += states.unpark(ti.id, ti.try_number)
    return woken


_ANY_PARKED = {
    pooled: Compiled(
        lambda pooled=pooled: _parked_query(Slot("dag_pk"), pooled and Slot("pool")).limit(1)
    )
    for pooled in (False, True)
}


def _any_parked(gate: Gate) -> bool:
    """Whether a try of the gate's DAG or pool is parked (asked after every try ends)."""
    query = _ANY_PARKED[bool(gate.pool)]
    return bool(query.rows(dag_pk=gate.dag_pk, pool=gate.pool))


def _parked(gate: Gate):
    return _parked_query(gate.dag_pk, gate.pool)


def _parked_query(dag_pk, pool):
    same = TaskInstance.dag_pk == dag_pk
    if pool:
        same = same | (TaskInstance.pool == pool)
    return TaskInstance.select(TaskInstance.id, TaskInstance.try_number).where(
        (TaskInstance.state == str(TaskState.QUEUED)) & TaskInstance.parked & same
    )


def _lock(gate: Gate) -> None:
    """Serialise the slot checks of one DAG and one pool (always in this order)."""
    if gate.dag_pk is not None:
        locks.take(locks.DAG_SLOTS, gate.dag_pk)
    if gate.pool:
        locks.take(locks.POOL_SLOTS, locks.name_key(gate.pool))


_CLAIMS: dict[tuple[bool, bool], Compiled] = {}


def _claim_within_slots(dag_limited: bool, pooled: bool) -> Compiled:
    """The claim's UPDATE with a free-slot condition (Slots: dag_pk, dag_limit, pool)."""
    key = (dag_limited, pooled)
    if key not in _CLAIMS:
        _CLAIMS[key] = Compiled(lambda: states.claim_update(_slot_free(*key)))
    return _CLAIMS[key]


def _slot_free(dag_limited: bool, pooled: bool):
    """A condition true while the DAG and the pool each have a slot free."""
    free = Value(True)
    if dag_limited:
        free &= _running_query("dag_pk", Slot("dag_pk")) < Slot("dag_limit")
    if pooled:
        slots = Pool.select(Pool.slots).where(Pool.name == Slot("pool"))
        free &= _running_query("pool", Slot("pool")) < fn.COALESCE(slots, 2**31 - 1)
    return free


def _running_query(column: str, value):
    """How many tries run whose ``column`` is ``value`` (a subquery of the claim's UPDATE)."""
    running = TaskInstance.alias()
    return running.select(fn.COUNT(running.id)).where(
        (getattr(running, column) == value) & (running.state == str(TaskState.RUNNING))
    )


def _running(where) -> int:
    return (
        TaskInstance.select().where(where & (TaskInstance.state == str(TaskState.RUNNING))).count()
    )


def _free_dag_slots(gate: Gate) -> int:
    if not gate.dag_limit:
        return 1
    return gate.dag_limit - _running(TaskInstance.dag_pk == gate.dag_pk)


def _free_pool_slots(gate: Gate) -> int:
    pool = Pool.get_or_none(Pool.name == gate.pool) if gate.pool else None
    if pool is None:  # no pool, or one deleted since: not limited by a pool
        return 1
    return pool.slots - _running(TaskInstance.pool == gate.pool)
