"""The duty-watch service: who is on duty now, and paging an incident to them (chat and scheduler alike)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.calendar import people_with_role
from bot.views import incident_card
from bot.wecom.outbox import Outbox
from storage import duty_repo
from storage.duty_models import Incident, IncidentEvent


def incident_subject(incident: Incident) -> str:
    """The CardHandle subject of an incident's page cards."""
    return f"incident:{incident.id}"


async def on_duty_userids(session: AsyncSession, at: datetime, roles: tuple[str, ...]) -> list[str]:
    shifts = await duty_repo.on_duty_at(session, at)
    return list(dict.fromkeys(s.userid for s in shifts if s.role in roles))


async def page_incident(
    ctx_now: datetime, session: AsyncSession, outbox: Outbox, incident: Incident, settings: object,
    names: dict[str, str], *, instance: str = "",
) -> list[str]:
    """Send the incident card to whoever is on duty now (admins when nobody is)."""
    on_duty = await on_duty_userids(session, ctx_now, ("primary", "deputy"))
    targets = on_duty or people_with_role(settings, "admin")  # type: ignore[arg-type]
    assert incident.id is not None
    task_id = f"sanshen-inc{incident.id}-{secrets.token_hex(5)}"
    incident.task_id = task_id
    session.add(incident)
    tz = settings.tz  # type: ignore[attr-defined]
    outbox.send_card(targets, incident_card(incident, names.get(incident.raised_by, incident.raised_by), tz, task_id),
                     subject=incident_subject(incident))
    session.add(IncidentEvent(incident_id=incident.id, at=ctx_now, kind="paged", actor=instance, details={"to": targets}))
    return targets
