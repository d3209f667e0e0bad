"""The check every architecture rule with an allow-list shares: findings the list does not name
fail, and so do entries that no finding needs any more, so the lists only shrink."""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping


def check_allow_list(found: Iterable[tuple[Hashable, str]], allowed: Mapping, name: str,
                     problem: str, gone: str) -> None:
    """``found``: ``(key, text)`` per finding; fail naming the texts whose key ``allowed`` lacks
    (after ``problem``), then the keys of ``allowed`` no finding has (``drop ... from name: gone``)."""
    found = list(found)
    wrong = [text for key, text in found if key not in allowed]
    assert not wrong, f"{problem}:\n" + "\n".join(wrong)
    keys = {key for key, _ in found}
    stale = [key for key in allowed if key not in keys]
    assert not stale, f"drop {stale} from {name}: {gone}"
