"""The events of a user import, written for a whole batch at once."""

from __future__ import annotations

from tests.support import Api
from tests.webhooks.receiver import Receiver


async def test_an_import_batch_gives_one_event_per_user_with_whether_it_was_new(
    hapi: Api, receiver: Receiver
) -> None:
    """Every user of a batch gets its user.imported event, new ones with created true."""
    app = await hapi.create_app()
    r = await hapi.call(app, "POST", "/v1/webhooks",
                        json={"url": receiver.url, "event_types": ["user.imported"]})
    assert r.status_code == 201, r.text
    (known,) = await hapi.import_users(app, "known")
    await receiver.wait_for(1)

    made = await hapi.import_users(app, "known", *(f"new-{i}" for i in range(20)))
    events = await receiver.wait_for(22)
    created = {e.json()["data"]["user_id_md5"]: e.json()["data"]["created"]
               for e in events[1:]}
    assert created == {known: False, **{u: True for u in made[1:]}}
    assert len({e.json()["event_id"] for e in events}) == 22
