"""Switchboard: which sender instance carries each outbound CRM message.

Type stubs of the native module (docs/world.md, docs/service.md, docs/bindings.md).
"""

import os
from types import TracebackType
from typing import Any, Dict, List, Literal, Optional, Sequence, Type, TypedDict, Union


__version__: str

class Contact(TypedDict, total=False):
    """The recipient of a message."""

    id: Optional[str]
    tags: List[str]
    assigned_user: Optional[str]
    phone: Optional[str]
    timezone: Optional[str]

class _InstanceRequired(TypedDict):
    id: str
    channel: str

class InstanceSpec(_InstanceRequired, total=False):
    """One sender instance, as in the world file or inline in a request."""

    index: int
    phone: str
    connected: bool
    default: bool
    users: List[str]
    reply_window: Optional[str]

class _RequestRequired(TypedDict):
    location: str
    channel: str
    body: str

class Request(_RequestRequired, total=False):
    """One outbound message to route (docs/world.md); unknown keys are a code-100 decision."""

    contact: Optional[Contact]
    instances: Optional[List[InstanceSpec]]
    message_id: Optional[str]
    """The caller's own id (at most 256 bytes); the decision carries it back."""

class SelectedInstance(TypedDict):
    """The selected instance."""

    id: str
    channel: str
    index: int
    phone: str

class _SelectionErrorRequired(TypedDict):
    code: int
    kind: str
    message: str

class SelectionError(_SelectionErrorRequired, total=False):
    """A coded selection error: 100 request, 101–109 built-in rules, >= 1000 plugins."""

    retry_at: str
    """Code 109 (`outside_send_window`): the next opening of the window, RFC 3339 in UTC."""

class _TraceRequired(TypedDict):
    rule: str
    outcome: Literal["selected", "no_match", "fell_through", "failed"]

class TraceEntry(_TraceRequired, total=False):
    """One rule consulted, in order."""

    detail: str

class _DecisionRequired(TypedDict):
    ok: bool
    rule: Optional[str]
    trace: List[TraceEntry]

class Decision(_DecisionRequired, total=False):
    """The decision for one request (docs/world.md): `instance` when `ok`, else `error`.

    `body` (the body with every routing pattern removed) is absent when the
    request could not be read; `rule` is None for code 100 and an exhausted chain.
    """

    body: str
    instance: SelectedInstance
    template_required: bool
    error: SelectionError
    message_id: str

class Status(TypedDict):
    """The reload status (docs/service.md `GET /v1/status`)."""

    generation: int
    last_attempt: Optional[str]
    last_success: Optional[str]
    last_error: Optional[str]
    rules_sha256: str
    world_sha256: Optional[str]
    order: Dict[str, List[str]]

class Diagnostic(TypedDict):
    """One located problem of a rules or world file (line/column None when unlocated)."""

    file: str
    line: Optional[int]
    column: Optional[int]
    message: str

class ReloadEvent(TypedDict):
    """What a reload did: type is "reloaded", "unchanged" (or "failed" in status errors)."""

    type: Literal["reloaded", "unchanged", "failed"]
    generation: int

class StoreError(Exception):
    """The capacity store (memory or Redis) cannot answer."""

class ConfigError(Exception):
    """A rules or world file is invalid; every problem, located."""

    diagnostics: List[Diagnostic]

_Path = Union[str, "os.PathLike[str]"]

class Engine:
    """One reloadable configuration: rules.yaml (plugins included) and the world file."""

    @staticmethod
    def open(rules: _Path, world: Optional[_Path] = None, watch: bool = False) -> "Engine":
        """Loads the files; raises ConfigError when one is invalid. watch=True reloads them on change."""
    def select(self, request: Request) -> Decision:
        """One decision; a request it cannot use gets the code-100 decision (never raises). Releases the GIL."""
    def select_json(self, request: Union[str, bytes]) -> str:
        """JSON text (str, or UTF-8 bytes) in, decision JSON text out (the fast path). Releases the GIL."""
    def select_many(self, requests: Sequence[Request]) -> List[Decision]:
        """Decisions for a batch, in order, on one configuration. Releases the GIL once."""
    def explain(self, request: Union[Request, str]) -> str:
        """The explain table (what `switchboard explain` prints)."""
    def status(self) -> Status:
        """The status dict (`GET /v1/status`)."""
    def forget(self, location: str, channel: str, contact: str) -> bool:
        """Erases the conversation memory (docs/capacity.md) of `contact` on `channel` at `location`; whether there was one. Raises StoreError when the capacity store cannot answer."""
    def record(self, events: Union[Dict[str, Any], List[Dict[str, Any]], str]) -> Dict[str, Any]:
        """Applies events from the send path (docs/live-state.md): a dict, a list of dicts, or JSON Lines text; returns {"accepted": n, "rejected": [{"line", "message"}]}."""
    def instances(self, location: str) -> Optional[Dict[str, Any]]:
        """The live state of a location's instances (the /v1/instances object); None when the world in force has no such location."""
    def reload(self) -> ReloadEvent:
        """Reloads now; raises ConfigError on invalid files (the last good configuration stays)."""
    def close(self) -> None:
        """Stops watching; selection keeps working."""
    def __enter__(self) -> "Engine": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
