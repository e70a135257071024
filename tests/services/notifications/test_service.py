"""services/notifications/service.py: each caller's own inbox, paged, counted and marked."""

from __future__ import annotations

import pytest

from events.consumer import EventConsumers
from schemas import NotificationRequested
from services.errors import BadUserInput, NotFound
from services.notifications import NotificationsService
from tests.services.notifications.conftest import handle, new_id, principal


async def fill(consumers: EventConsumers, user_id: str, count: int) -> None:
    for n in range(count):
        await handle(consumers, NotificationRequested(user_id=user_id, type="n", title=f"n{n}"))


async def test_pages_newest_first_with_an_after_cursor(
    consumers: EventConsumers, notifications: NotificationsService
) -> None:
    me, someone = principal(new_id()), principal(new_id())
    await fill(consumers, me.user_id, 5)
    await fill(consumers, someone.user_id, 2)

    first = await notifications.notifications(me, first=2)
    second = await notifications.notifications(me, first=2, after=first[-1].id)
    third = await notifications.notifications(me, first=2, after=second[-1].id)

    assert [n.title for n in first + second + third] == ["n4", "n3", "n2", "n1", "n0"]
    assert await notifications.notifications(me, first=2, after=third[-1].id) == []
    assert len(await notifications.notifications(someone)) == 2


async def test_unread_count_mark_read_and_mark_all_read(
    consumers: EventConsumers, notifications: NotificationsService
) -> None:
    me, someone = principal(new_id()), principal(new_id())
    await fill(consumers, me.user_id, 3)
    await fill(consumers, someone.user_id, 1)
    newest = (await notifications.notifications(me, first=1))[0]

    assert await notifications.unread_count(me) == 3
    assert await notifications.mark_read(me, newest.id) is True
    assert await notifications.mark_read(me, newest.id) is True  # again: still true
    assert await notifications.unread_count(me) == 2
    unread = await notifications.notifications(me, unread_only=True)
    assert [n.title for n in unread] == ["n1", "n0"]
    read = (await notifications.notifications(me, first=1))[0]
    assert read.read_at is not None

    with pytest.raises(NotFound):  # someone else's notification is not the caller's
        await notifications.mark_read(someone, newest.id)

    assert await notifications.mark_all_read(me) == 2
    assert await notifications.mark_all_read(me) == 0
    assert await notifications.unread_count(me) == 0
    assert await notifications.unread_count(someone) == 1


async def test_missed_returns_what_came_after_since_oldest_first(
    consumers: EventConsumers, notifications: NotificationsService
) -> None:
    me = principal(new_id())
    await fill(consumers, me.user_id, 6)
    oldest_first = list(reversed(await notifications.notifications(me)))

    missed = await notifications.missed(me, oldest_first[2].id)
    assert [n.id for n in missed] == [n.id for n in oldest_first[3:]]
    assert await notifications.missed(me, oldest_first[-1].id) == []
    limited = await notifications.missed(me, oldest_first[0].id, limit=2)
    assert [n.title for n in limited] == ["n1", "n2"]


async def test_bad_input_is_refused(notifications: NotificationsService) -> None:
    me = principal(new_id())
    for first in (0, 101, -1):
        with pytest.raises(BadUserInput):
            await notifications.notifications(me, first=first)
    with pytest.raises(BadUserInput):
        await notifications.notifications(me, after="not-an-id")
    with pytest.raises(BadUserInput):
        await notifications.missed(me, "not-an-id")
    with pytest.raises(BadUserInput):
        await notifications.mark_read(me, "x" * 500)
