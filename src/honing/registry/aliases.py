"""Registry aliases with a history: every move of an alias (``champion``, ``challenger``) is
recorded, append-only, as a tag of the registered model, saying who or what moved it, from
which version to which, and why. :func:`rollback` moves ``champion`` back with a reason,
and the served flavor follows.

The history lives in the MLflow store itself (one new tag per move, never rewritten), so a
local SQLite store and a shared PostgreSQL one keep it the same way.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import asdict, dataclass

from honing.exceptions import RegistryError
from honing.lineage import DIGEST_TAG

#: Tag-name prefix of the moves; the suffix is the move's time in nanoseconds (sortable).
MOVE_PREFIX = "honing.alias_move."
#: The tag of a version naming its served flavor's version ("<name>-served/<version>").
SERVED_TAG = "honing.served_model"


@dataclass(frozen=True)
class AliasMove:
    model: str
    alias: str
    version: str
    previous: str | None
    by: str
    reason: str
    at: float  # seconds since the epoch

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        was = f"v{self.previous}" if self.previous else "none"
        now = f"v{self.version}" if self.version else "none"
        return f"{when}  @{self.alias}: {was} -> {now}  by {self.by}: {self.reason}"


def _client():  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient()


def holder(name: str, alias: str) -> str | None:
    """The version holding ``alias`` of model ``name`` (None: no such alias)."""
    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except Exception:  # noqa: BLE001 - no model, or no alias
        return None


def move_alias(name: str, alias: str, version: str, *, by: str, reason: str) -> AliasMove:
    """Point ``alias`` of ``name`` at ``version`` and record the move (a no-op move, to the
    version already holding it, is recorded too: it was decided)."""
    previous = holder(name, alias)
    _client().set_registered_model_alias(name, alias, version)
    return _record(AliasMove(name, alias, str(version), previous, by, reason[:4000], time.time()))


def _record(move: AliasMove) -> AliasMove:
    """Record ``move`` on its model (a tag, never rewritten) and tell the story again in the
    model's description (:func:`honing.registry.describe.model_description`)."""
    from honing.registry.describe import model_description

    client = _client()
    client.set_registered_model_tag(
        move.model, f"{MOVE_PREFIX}{time.time_ns()}", json.dumps(move.to_dict())
    )
    client.update_registered_model(move.model, model_description(move.model, history(move.model)))
    return move


def served_name(name: str) -> str:
    """Registered-model name of the served (compressed) flavor of ``name``."""
    return f"{name}-served"


def _served(name: str, version: str) -> tuple[str, str] | None:
    """The served flavor's (model, version) of version ``version`` of ``name``, if any."""
    served = _client().get_model_version(name, version).tags.get(SERVED_TAG)
    if not served:
        return None
    served_name, _, served_version = served.rpartition("/")
    return served_name, served_version


def served_uri(name: str, alias: str = "champion", version: str | None = None) -> str:
    """The served flavor of the version of ``name`` holding ``alias`` (or of ``version``),
    found through that version's own link, never through the flavor's alias: a run killed
    between the two moves, or a rollback, cannot make it answer for another model."""
    number = version or holder(name, alias)
    if number is None:
        raise RegistryError(f"model {name!r} has no @{alias}; train or roll back first")
    served = _served(name, number)
    if served is None:
        raise RegistryError(
            f"{name} v{number} has no served flavor (its compression was skipped or trimmed); "
            "score it without --served"
        )
    return f"models:/{served[0]}/{served[1]}"


def move_with_served(
    name: str, alias: str, version: str, *, by: str, reason: str
) -> list[AliasMove]:
    """:func:`move_alias`, and the same move of the served flavor's alias, so that the served
    model always follows the model: to the version's own flavor, or off the old flavor when
    the version has none."""
    moves = [move_alias(name, alias, version, by=by, reason=reason)]
    served = _served(name, version)
    if served is not None:
        moves.append(move_alias(served[0], alias, served[1], by=by, reason=reason))
        return moves
    flavor = served_name(name)
    previous = holder(flavor, alias)
    if previous is not None:
        _client().delete_registered_model_alias(flavor, alias)
        why = f"v{version} of {name} has no served flavor ({reason})"
        moves.append(_record(AliasMove(flavor, alias, "", previous, by, why[:4000], time.time())))
    return moves


def clear_alias(name: str, alias: str, *, by: str, reason: str) -> list[AliasMove]:
    """Remove ``alias`` from the version holding it (and from its served flavor), recording
    the move to none."""
    previous = holder(name, alias)
    if previous is None:
        return []
    served = _served(name, previous)
    moves = []
    for model, held in [(name, previous), *([served] if served is not None else [])]:
        if holder(model, alias) == held:
            _client().delete_registered_model_alias(model, alias)
            moves.append(_record(AliasMove(model, alias, "", held, by, reason[:4000], time.time())))
    return moves


def history(name: str, alias: str | None = None) -> list[AliasMove]:
    """The recorded moves of ``name``'s aliases (of ``alias`` only, when given), oldest first."""
    try:
        tags = _client().get_registered_model(name).tags
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(f"cannot read model {name!r}: {exc}") from exc
    moves = [
        AliasMove(**json.loads(value))
        for key, value in sorted(tags.items(), key=lambda kv: int(kv[0].rpartition(".")[2]))
        if key.startswith(MOVE_PREFIX)
    ]
    return [m for m in moves if alias is None or m.alias == alias]


def rollback(
    name: str,
    *,
    reason: str,
    to: str | None = None,
    alias: str = "champion",
    by: str | None = None,
) -> list[AliasMove]:
    """Move ``alias`` of ``name`` back: to version ``to``, or to the version that held it
    before the current one. The target must be a complete registration. The served flavor
    (``<name>-served``) follows when the target has one. Returns the moves made."""
    if not reason.strip():
        raise RegistryError("rule: a rollback states its reason (--reason)")
    current = holder(name, alias)
    if to is None:
        earlier = [m.previous for m in history(name, alias) if m.version == current and m.previous]
        if not earlier:
            raise RegistryError(
                f"model {name!r}: no earlier holder of @{alias} is recorded; name one with --to"
            )
        to = earlier[-1]
    try:
        target = _client().get_model_version(name, to)
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(f"model {name!r} has no version {to}: {exc}") from exc
    if not target.tags.get(DIGEST_TAG):
        raise RegistryError(
            f"model {name!r} v{to}: rule: roll back only to a complete registration (this "
            "version has no recorded file digests)"
        )
    by = by or f"{getpass.getuser()} (honing rollback)"
    words = f"rollback from v{current or 'none'}: {reason.strip()}"
    return move_with_served(name, alias, str(to), by=by, reason=words)
