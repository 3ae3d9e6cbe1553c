"""A draft version's content as reviewed: its text, its HTML, its files, and the hash that binds them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

FileRole = Literal["original", "image", "attachment"]


@dataclass(frozen=True)
class FileRef:
    """One stored file of a version (the bytes are in the file store under `sha256`)."""

    role: FileRole
    sha256: str
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class VersionContent:
    """What reviewers read and approve: the plain text (previews, diffs), the HTML as published,
    where it came from (typed text or a .docx), and every file."""

    body: str
    body_html: str
    source: Literal["text", "docx"] = "text"
    files: tuple[FileRef, ...] = ()

    @property
    def content_sha256(self) -> str:
        """sha256 over a canonical encoding of everything above: the audit chain records it, so
        the approved version is provably the one whose text and files were reviewed."""
        canonical = json.dumps(
            {
                "body": self.body,
                "body_html": self.body_html,
                "source": self.source,
                "files": sorted([f.role, f.sha256, f.name] for f in self.files),
            },
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def images(self) -> tuple[FileRef, ...]:
        return tuple(f for f in self.files if f.role == "image")
