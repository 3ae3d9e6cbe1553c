"""Role codes and their Chinese names, as shown in help and refusals."""

from __future__ import annotations

from collections.abc import Iterable

ROLE_NAMES = {
    "collector": "采编人员",
    "reviewer": "科室负责人",
    "leader": "单位领导",
    "principal": "主要领导",
    "duty": "值班人员",
    "publisher": "发布人员",
    "admin": "管理员",
}


def role_names(roles: Iterable[str]) -> str:
    return "、".join(ROLE_NAMES.get(r, r) for r in roles) or "无"
