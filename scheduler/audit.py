"""The daily audit checkpoint: the chain's head witnessed in the database, a file and the admins' chat."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot import views
from bot.rules.calendar import local_at, local_day, people_with_role
from bot.wecom.outbox import Outbox
from scheduler.sweeper import SweepContext
from storage.audit_repo import add_checkpoint
from storage.occasions_repo import claim_occasion

log = logging.getLogger(__name__)


async def audit_checkpoint(ctx: SweepContext) -> int:
    """Once a day after `[audit] checkpoint_time`: record the head (signed with the key when
    set), append it to `[audit] checkpoint_file`, and send it to the admins. Cutting the chain
    back past a checkpoint is then caught by verify-audit, wherever the checkpoint was kept."""
    settings = ctx.settings
    today = local_day(ctx.now, settings.tz)
    if ctx.now < local_at(today, settings.audit.checkpoint_time, settings.tz):
        return 0
    async with ctx.db() as session, session.begin():
        if not await claim_occasion(
            session=session,
            kind="audit_checkpoint",
            subject="chain",
            occasion=today.isoformat(),
            at=ctx.now,
            by=ctx.instance,
        ):
            return 0
        checkpoint = await add_checkpoint(session=session, at=ctx.now, key=settings.audit.key)
        line = f"{today.isoformat()}\t{checkpoint.entry_id}\t{checkpoint.entry_hash}\t{checkpoint.mac}\n"
        if settings.audit.checkpoint_file:
            await asyncio.to_thread(_append, Path(settings.audit.checkpoint_file), line)
        admins = people_with_role(settings, "admin")
        if admins and checkpoint.entry_id:
            Outbox(session, ctx.clock).send_text(
                admins, views.audit_checkpoint(today, checkpoint.entry_id, checkpoint.entry_hash)
            )
    log.info("audit checkpoint %s: entry %s", today, checkpoint.entry_id)
    return 1


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(line)
        out.flush()


SWEEPS = (audit_checkpoint,)
