"""Reading a written page in the report tests: its images, their titles."""

from __future__ import annotations

import html
import re

_IMG = re.compile(r"<img\b[^>]*>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def images(page: str) -> list[dict[str, str]]:
    """The attributes of every `<img>` of the page, in order."""
    return [dict(_ATTR.findall(tag)) for tag in _IMG.findall(page)]


def alts(page: str) -> list[str]:
    """The titles (alt texts, unescaped) of the page's plots, in order."""
    return [html.unescape(img.get("alt", "")).strip() for img in images(page)]
