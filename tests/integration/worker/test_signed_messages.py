"""Write access to the queue is not code execution (#16.4): the worker unpickles only
messages signed with this deployment's key, on both backends (huey's SQLite queue, Redis)."""

import pickle

from app import broker
from app.store.db import db
from tests.conftest import deploy_source, dropped_messages, wait_for_run


class Exploit:
    """Unpickling this calls open(marker, "w"): the file shows whether it ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_forged_message_is_dropped_before_it_is_unpickled(client, admin, consumer, tmp_path):
    marker = tmp_path / "pwned"
    broker.huey.storage.enqueue(pickle.dumps(Exploit(str(marker))))  # unsigned
    # A well-formed try message, signed with another deployment's key.
    elsewhere = broker.SignedMessages(broker.huey.serializer.settings)
    elsewhere.derived = b"another deployment's key"
    message = broker.huey._registry.create_message(broker.run_task_instance.s(999999, 1))
    broker.huey.storage.enqueue(elsewhere.serialize(message))
    # A real message after them: once its run is done, the forged ones were consumed.
    deploy_source(client, admin, "ok", "def handler(event, context):\n    return 'ok'\n")
    invoked = client.post("/api/v1/functions/ok/invoke?wait=30", json={}, headers=admin)
    assert (invoked.status_code, invoked.get_json()["result"]) == (200, "ok")
    assert wait_for_run(invoked.get_json()["run_id"]).state == "success"
    assert not marker.exists(), "the forged message was unpickled and ran"
    with db.connection_context():
        assert dropped_messages() == 0  # the try message was never run (it names no row)
    assert broker.huey.storage.queue_size() == 0
