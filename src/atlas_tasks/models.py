"""The task and workspace documents, shaped exactly like the Go ATLAS's ``task.json`` and ``workspace.json``.

Field order is the JSON key order (Go's struct order, with the story's extra fields interleaved). Keys a model does
not declare are kept and written back unchanged, so a newer writer's fields survive an older reader's update.
Each model lists the fields Go marks ``omitempty``; :mod:`atlas_tasks._codec` leaves those out of the JSON when
empty and always writes the others. ``model_dump()`` returns every field, in this library's key names.

Times are RFC 3339 as Go writes them (0-9 fractional digits, ``Z`` for UTC) and keep Go's nanoseconds through
:class:`NanoTime`, so an unchanged document is written back byte for byte.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, SupportsIndex, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    model_validator,
)
from pydantic.functional_validators import ModelWrapValidatorHandler  # pydantic 2.7 does not export it at the top
from pydantic_core import CoreSchema, core_schema

from atlas_tasks._status import StepStatus, StepType, TaskStatus, WorkspaceStatus
from atlas_tasks.transitions import TERMINAL_STATUSES, check_transition

#: How Go writes an unset (zero) ``time.Time``; read as ``None``.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

KeyStyle = Literal["story", "go"]

# ---------------------------------------------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------------------------------------------


class NanoTime(datetime):
    """An aware ``datetime`` that also carries the nanoseconds below its microsecond (0-999).

    Go writes times with up to 9 fractional digits; Python keeps 6. A ``NanoTime`` remembers the rest so that
    :func:`format_time` writes the original digits back. Every time read from a string is a ``NanoTime``.
    Arithmetic, comparison and hashing are those of ``datetime`` (microsecond precision: two values differing only
    in ``nanosecond`` compare equal); results of arithmetic and ``replace`` carry no extra nanoseconds.
    """

    # Class defaults rather than __slots__ or a __new__ keyword: datetime's C constructors (fromisoformat,
    # arithmetic, replace) then build subclass instances at C speed, and every instance still has the attributes.
    _nanosecond: int = 0
    # The RFC 3339 text this value was parsed from, when it is exactly what format_time writes for it: an unchanged
    # time is then written back without formatting (formatting is most of the cost of re-encoding a task).
    _go_text: str | None = None

    @classmethod
    def from_datetime(cls, value: datetime, nanosecond: int) -> Self:
        """The same time as ``value`` plus ``nanosecond`` (0-999) nanoseconds beyond its microsecond."""
        if not 0 <= nanosecond <= 999:
            raise ValueError(f"nanosecond must be in 0..999, got {nanosecond}")
        result = datetime.__new__(cls, *_fields(value), fold=value.fold)
        result._nanosecond = nanosecond
        return result

    @property
    def nanosecond(self) -> int:
        """The nanoseconds beyond ``microsecond`` (0-999)."""
        return self._nanosecond

    def astimezone(self, tz: Any = None) -> NanoTime:
        """Like ``datetime.astimezone``; the same instant, so the nanoseconds are kept."""
        return NanoTime.from_datetime(super().astimezone(tz), self._nanosecond)

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        # datetime pickles (and copies) as (cls, (state,)) and would rebuild without the nanoseconds.
        return (_restore_nanotime, (_fields(self), self.fold, self._nanosecond))

    def __repr__(self) -> str:
        text = super().__repr__()
        return f"{text[:-1]}, nanosecond={self._nanosecond})" if self._nanosecond else text


def _fields(value: datetime) -> tuple[Any, ...]:
    return (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.tzinfo,
    )


def _restore_nanotime(fields: tuple[Any, ...], fold: int, nanosecond: int) -> NanoTime:
    return NanoTime.from_datetime(datetime(*fields, fold=fold), nanosecond)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


_GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)


def _is_go_zero(value: datetime) -> bool:
    # Checking the year first keeps the common case cheap and avoids comparing instants near datetime.min.
    return value.year == 1 and value == _GO_ZERO


# datetime.fromisoformat does the parsing, but it also takes ISO forms RFC 3339 does not (week dates, basic format,
# a comma, no zone); this pattern admits only RFC 3339 with seconds and a zone, and finds the fraction and zone.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", re.ASCII)
_ZERO_OFFSETS = frozenset({"+00:00", "-00:00"})


# Parsed times by their text: a task's times are re-read on every get, list and update, and a parse (regex, then
# fromisoformat, then the canonical-text check) costs more than the rest of validating the field. The values are
# immutable datetimes (a NanoTime's extra attributes are set here, before it is shared, and never after), so one
# object can serve every task that holds the same text. Only valid texts are kept; cleared past the cap.
_PARSED_TIMES: dict[str, datetime | None] = {}
_PARSED_TIMES_CAP = 1 << 15


def _parse_rfc3339(text: str) -> datetime | None:
    try:
        return _PARSED_TIMES[text]
    except KeyError:
        pass
    value = _parse_rfc3339_text(text)
    if len(_PARSED_TIMES) >= _PARSED_TIMES_CAP:
        _PARSED_TIMES.clear()
    _PARSED_TIMES[text] = value
    return value


def _parse_rfc3339_text(text: str) -> datetime | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time with a zone: {text!r}")
    fraction, zone = match.groups()
    if zone == "z":
        text = text[:-1] + "Z"  # fromisoformat wants an upper-case Z
    try:
        # fromisoformat reads 6 fractional digits and ignores the rest; NanoTime keeps those.
        value = NanoTime.fromisoformat(text)
    except ValueError:  # e.g. month 13 or second 60
        raise ValueError(f"not a valid time: {text!r}") from None
    if fraction is not None and len(fraction) > 7:
        value._nanosecond = int(fraction[7:].ljust(3, "0"))
    # Canonical = exactly what format_time writes: upper-case T and Z, Z for UTC, no trailing fraction zeros.
    if text[10] == "T" and zone != "z" and zone not in _ZERO_OFFSETS and (fraction is None or fraction[-1] != "0"):
        value._go_text = text
    return None if _is_go_zero(value) else value


def parse_time(value: object) -> datetime | None:
    """Read a time field: an RFC 3339 string (0-9 fractional digits, ``Z`` or ``+hh:mm``) or an aware datetime.

    Args:
        value: The raw value (``None``, a string or a ``datetime``).

    Returns:
        An aware datetime (a :class:`NanoTime` when read from a string), or ``None`` for ``None`` and for Go's
        zero time ``0001-01-01T00:00:00Z``.

    Raises:
        ValueError: A malformed string, a naive datetime or another type.
    """
    if isinstance(value, str):
        # The cache lookup is inlined: a task's ~16 times are validated on every decode, and nearly all are hits.
        try:
            return _PARSED_TIMES[value]
        except KeyError:
            return _parse_rfc3339(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("timestamps must be timezone-aware (got a naive datetime)")
        return None if _is_go_zero(value) else value
    raise ValueError(f"expected an RFC 3339 string or a datetime, got {type(value).__name__}")


def format_time(value: datetime | None) -> str:
    """Write a time as Go's ``time.Time`` JSON does.

    Args:
        value: An aware datetime, or ``None`` for Go's zero time.

    Returns:
        ``YYYY-MM-DDTHH:MM:SS`` plus the fraction with trailing zeros trimmed (up to 9 digits), then ``Z`` for a
        zero UTC offset or ``+hh:mm``/``-hh:mm``.

    Raises:
        ValueError: A naive datetime, or an offset that is not a whole number of minutes (RFC 3339 has no seconds
            in offsets, and dropping them would move the instant).
    """
    if value is None:
        return GO_ZERO_TIME
    nanos = 0
    if type(value) is NanoTime:
        if value._go_text is not None:
            return value._go_text
        nanos = value._nanosecond
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"timestamps must be timezone-aware (got naive {value!r})")
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (  # noqa: UP031 - %-formatting is the fastest here
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
    )
    fraction = value.microsecond * 1000 + nanos
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + ("Z" if not offset else _format_offset(offset))


def _format_offset(offset: timedelta) -> str:
    seconds = offset.days * 86400 + offset.seconds
    if seconds % 60 or offset.microseconds:
        raise ValueError(f"zone offset {offset} is not a whole number of minutes")
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _format_optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


#: A time that is always written; ``None`` is written as Go's zero time.
Timestamp = Annotated[datetime | None, PlainValidator(parse_time), PlainSerializer(format_time, when_used="json")]
#: A time that is omitted from JSON when ``None`` (a Go ``*time.Time`` with ``omitempty``).
OptionalTimestamp = Annotated[
    datetime | None, PlainValidator(parse_time), PlainSerializer(_format_optional_time, when_used="json")
]

# ---------------------------------------------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------------------------------------------


class NanoDuration(timedelta):
    """A ``timedelta`` that also carries the nanoseconds below its microsecond (0-999), like :class:`NanoTime`.

    Go's ``time.Duration`` is integer nanoseconds; this keeps a value that is not a whole number of microseconds
    exact through a read and write. Arithmetic gives ordinary ``timedelta`` values.
    """

    __slots__ = ("_nanosecond",)
    _nanosecond: int

    def __new__(cls, *args: Any, nanosecond: int = 0, **kwargs: Any) -> Self:
        """Build like ``timedelta(...)``, plus ``nanosecond``: the nanoseconds beyond the microseconds."""
        if not 0 <= nanosecond <= 999:
            raise ValueError(f"nanosecond must be in 0..999, got {nanosecond}")
        self = super().__new__(cls, *args, **kwargs)
        self._nanosecond = nanosecond
        return self

    @property
    def nanosecond(self) -> int:
        """The nanoseconds beyond the microseconds (0-999)."""
        return self._nanosecond

    def __bool__(self) -> bool:
        # Go omits a zero Duration; 5ns is not zero although its timedelta part is.
        return bool(self._nanosecond) or super().__bool__()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_nanoduration, (self.days, self.seconds, self.microseconds, self._nanosecond))

    def __repr__(self) -> str:
        text = super().__repr__()
        return f"{text[:-1]}, nanosecond={self._nanosecond})" if self._nanosecond else text


def _restore_nanoduration(days: int, seconds: int, microseconds: int, nanosecond: int) -> NanoDuration:
    return NanoDuration(days, seconds, microseconds, nanosecond=nanosecond)


def parse_duration(value: object) -> timedelta | None:
    """Read a Go ``time.Duration``: integer nanoseconds (a ``timedelta`` is accepted as is).

    Raises:
        ValueError: Anything but ``None``, an int or a ``timedelta``.
    """
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        micros, nanos = divmod(value, 1000)
        return NanoDuration(microseconds=micros, nanosecond=nanos) if nanos else timedelta(microseconds=micros)
    raise ValueError(f"expected a duration in integer nanoseconds, got {type(value).__name__}")


def format_duration(value: timedelta | None) -> int | None:
    """Write a duration as Go does: integer nanoseconds (``None`` stays ``None``)."""
    if value is None:
        return None
    nanos = value._nanosecond if type(value) is NanoDuration else 0
    return ((value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds) * 1000 + nanos


#: A Go ``time.Duration`` field: a ``timedelta`` in Python, integer nanoseconds in JSON.
Duration = Annotated[
    timedelta | None, PlainValidator(parse_duration), PlainSerializer(format_duration, when_used="json")
]

# ---------------------------------------------------------------------------------------------------------------
# Field helpers
# ---------------------------------------------------------------------------------------------------------------


class _LenientEnum:
    """Annotation for a Go plain-string field with known values: the enum member when known, else the raw string.

    Serialized as a plain string without a Python call (PlainValidator alone would add a wrap serializer per field).
    """

    def __init__(self, enum: type[StrEnum]) -> None:
        self._members: dict[str, StrEnum] = {member.value: member for member in enum}

    def _validate(self, value: object) -> str:
        if isinstance(value, str):
            return self._members.get(value, value)
        raise ValueError(f"expected a string, got {type(value).__name__}")

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # Validated in Rust (a task has ~20 of these fields, and a listing decodes thousands of tasks): the enum
        # when the value is one of its members, else any string; anything else fails with one error.
        enum = type(next(iter(self._members.values())))
        either = core_schema.union_schema(
            [
                core_schema.enum_schema(enum, list(self._members.values()), sub_type="str"),
                core_schema.str_schema(strict=True),
            ],
            mode="left_to_right",
        )
        return core_schema.custom_error_schema(
            either,
            custom_error_type="lenient_enum",
            custom_error_message="expected a string",
            serialization=core_schema.simple_ser_schema("str"),
        )


def _null_as_list(value: Any) -> Any:
    # Go writes a nil slice without omitempty as null; read it as empty.
    return [] if value is None else value


def _null_as_dict(value: Any) -> Any:
    return {} if value is None else value


def _version_text(value: Any) -> Any:
    # Tolerate an int version (a hand-edited or foreign file); the task's own format is a string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _sorted_map(value: dict[str, Any]) -> dict[str, Any]:
    # Go writes every map (map[string]any, nested ones too) with its keys sorted; do the same so a document is
    # byte-identical to what Go would write for it. Code-point order equals Go's byte order over UTF-8.
    return {key: _sorted_value(value[key]) for key in sorted(value)}


def _sorted_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _sorted_map(value)
    if isinstance(value, list):
        return [_sorted_value(item) for item in value]
    return value


_NullList = BeforeValidator(_null_as_list)
_NullDict = BeforeValidator(_null_as_dict)
_GoMap = PlainSerializer(_sorted_map, when_used="json")

#: A step type: a :class:`StepType` member when known, else the string as read.
StepTypeValue = Annotated[StepType | str, _LenientEnum(StepType)]
#: A step status: a :class:`StepStatus` member when known, else the string as read.
StepStatusValue = Annotated[StepStatus | str, _LenientEnum(StepStatus)]
#: A task status in a record (transition, task ref): a :class:`TaskStatus` member when known, else the string.
TaskStatusValue = Annotated[TaskStatus | str, _LenientEnum(TaskStatus)]

# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


class _GoModel(BaseModel):
    """Shared configuration and Go's ``omitempty`` for every document model.

    ``omitempty`` is applied by :mod:`atlas_tasks._codec` as a pydantic ``exclude`` spec built by
    :meth:`_go_exclude`, so the Rust encoder writes the JSON in one pass (a wrap serializer would turn every model
    into a Python dict first and roughly double the encoding time). ``model_dump`` therefore returns every field.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=False, populate_by_name=True)

    #: Declared fields left out of JSON when empty ("", 0, False, None, [], {}); never an unknown key.
    _omit_empty: ClassVar[frozenset[str]] = frozenset()
    #: Fields holding a model or a list of models, whose own empty fields are left out too (derived per class).
    _nested: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        unknown = cls._omit_empty - fields.keys()
        if unknown:
            raise TypeError(f"{cls.__name__}._omit_empty names unknown fields {sorted(unknown)}")
        cls._nested = tuple(name for name, field in fields.items() if _holds_models(field.annotation))

    def _go_exclude(self) -> dict[str, Any]:
        """The ``exclude`` spec that drops this model's empty ``omitempty`` fields, nested models included."""
        values = self.__dict__  # declared fields only (extras live in __pydantic_extra__), faster than getattr
        spec: dict[str, Any] = {name: True for name in self._omit_empty if not values[name]}
        for name in self._nested:
            value = values[name]
            if name in spec:
                continue
            if isinstance(value, list):
                items = {index: sub for index, item in enumerate(value) if (sub := item._go_exclude())}
                if items:
                    spec[name] = items
            elif sub := value._go_exclude():
                spec[name] = sub
        return spec

    def _go_target(self) -> tuple[_GoModel, bool]:
        """The model to encode and whether to use serialization aliases (Go key names); see :class:`Task`."""
        return self, False


def _holds_models(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    return isinstance(annotation, type) and issubclass(annotation, _GoModel)


class TaskConfig(_GoModel):
    """How a task runs: agent, model and limits (Go's ``TaskConfig``; every field omitted when empty).

    Attributes:
        timeout: A ``timedelta``, written as Go's integer nanoseconds.
    """

    _omit_empty = frozenset(
        {"agent", "model", "max_turns", "timeout", "permission_mode", "validation_commands", "variables"}
    )

    agent: str = ""
    model: str = ""
    max_turns: int = 0
    timeout: Duration = None
    permission_mode: str = ""
    validation_commands: Annotated[list[str], _NullList] = Field(default_factory=list)
    variables: Annotated[dict[str, str], _NullDict, _GoMap] = Field(default_factory=dict)


class Step(_GoModel):
    """One step of a task's template and its progress.

    ``type`` and ``status`` are enum members when known and the raw string otherwise, so a status written by a
    newer engine never makes a task unreadable.
    """

    _omit_empty = frozenset(
        {"description", "prompt", "commands", "timeout_seconds", "started_at", "completed_at", "error"}
    )

    name: str = ""
    type: StepTypeValue = ""
    description: str = ""
    prompt: str = ""
    commands: Annotated[list[str], _NullList] = Field(default_factory=list)
    timeout_seconds: int = 0
    status: StepStatusValue = StepStatus.PENDING
    started_at: OptionalTimestamp = None
    completed_at: OptionalTimestamp = None
    error: str = ""
    attempts: int = 0


class ApprovalOption(_GoModel):
    """A choice offered to the user when a step waits for approval."""

    _omit_empty = frozenset({"description", "recommended"})

    key: str = ""
    label: str = ""
    description: str = ""
    recommended: bool = False


class StepResult(_GoModel):
    """The outcome of one execution of a step (append-only: a retried step adds another result)."""

    _omit_empty = frozenset(
        {
            "output",
            "error",
            "files_changed",
            "artifact_path",
            "session_id",
            "num_turns",
            "metadata",
            "approval_options",
        }
    )

    step_index: int = 0
    step_name: str = ""
    status: StepStatusValue = ""
    started_at: Timestamp = None
    completed_at: Timestamp = None
    duration_ms: int = 0
    output: str = ""
    error: str = ""
    files_changed: Annotated[list[str], _NullList] = Field(default_factory=list)
    artifact_path: str = ""
    session_id: str = ""
    num_turns: int = 0
    metadata: Annotated[dict[str, Any], _NullDict, _GoMap] = Field(default_factory=dict)
    approval_options: Annotated[list[ApprovalOption], _NullList] = Field(default_factory=list)


class Transition(_GoModel):
    """One status change in a task's audit trail."""

    _omit_empty = frozenset({"reason"})

    from_status: TaskStatusValue = ""
    to_status: TaskStatusValue = ""
    timestamp: Timestamp = None
    reason: str = ""


class Task(_GoModel):
    """A unit of work in a workspace: its steps, results, status history and configuration.

    A task remembers which key spelling its document used (:attr:`key_style`): the story's (``workspace_name``,
    ``template``, top-level ``model``) or the Go ATLAS's (``workspace_id``, ``template_id``, model only in
    ``config.model``), and is written back with the same spelling so either program can keep reading it.

    Attributes:
        current_step: 0-based index into ``steps`` of the step to run next (``len(steps)`` once all ran).
        step_results: Append-only results; a retried step adds another entry.
        transitions: The status audit trail; :meth:`transition` appends to it.
        model: The AI model; in Go style it is read from and written to ``config.model``.
        revision: The store's optimistic-concurrency counter (unknown to Go, which drops it when it saves).
        schema_version: The document format version, ``"1.0"``.
    """

    _omit_empty = frozenset(
        {"step_results", "transitions", "model", "completed_at", "metadata", "running_processes", "revision"}
    )
    _key_style: KeyStyle = PrivateAttr(default="story")

    id: str = ""
    # The serialization aliases are the Go names, used when the task is written in Go style.
    workspace_name: str = Field(
        default="",
        validation_alias=AliasChoices("workspace_name", "workspace_id"),
        serialization_alias="workspace_id",
    )
    template: str = Field(
        default="", validation_alias=AliasChoices("template", "template_id"), serialization_alias="template_id"
    )
    description: str = ""
    status: TaskStatus = TaskStatus.PENDING
    current_step: int = 0
    steps: Annotated[list[Step], _NullList] = Field(default_factory=list)
    step_results: Annotated[list[StepResult], _NullList] = Field(default_factory=list)
    transitions: Annotated[list[Transition], _NullList] = Field(default_factory=list)
    model: str = ""
    created_at: Timestamp = None
    updated_at: Timestamp = None
    completed_at: OptionalTimestamp = None
    config: Annotated[TaskConfig, _NullDict] = Field(default_factory=TaskConfig)
    metadata: Annotated[dict[str, Any], _NullDict, _GoMap] = Field(default_factory=dict)
    running_processes: Annotated[list[int], _NullList] = Field(default_factory=list)
    revision: int = 0
    schema_version: Annotated[str, BeforeValidator(_version_text)] = "1.0"

    @model_validator(mode="wrap")
    @classmethod
    def _remember_key_style(cls, data: Any, handler: ModelWrapValidatorHandler[Task]) -> Task:
        task = handler(data)
        if isinstance(data, dict) and _uses_go_keys(data):
            task._key_style = "go"
            # Go keeps the model only in config.model; mirror it so task.model means the same in both styles.
            if "model" not in data:
                task.model = task.config.model
        return task

    @property
    def key_style(self) -> KeyStyle:
        """``"go"`` if the document used Go's key names (``workspace_id``/``template_id``), else ``"story"``."""
        return self._key_style

    def with_key_style(self, style: KeyStyle) -> Task:
        """A (shallow, like ``model_copy()``) copy of this task that will be written with the given key spelling.

        Use ``"go"`` for a task that the Go ATLAS must be able to read (it ignores ``workspace_name``/``template``).
        """
        copy = self.model_copy()
        copy._key_style = style
        return copy

    @property
    def is_terminal(self) -> bool:
        """Whether the status is completed, rejected or abandoned."""
        return self.status in TERMINAL_STATUSES

    @property
    def current(self) -> Step | None:
        """The step at ``current_step``, or ``None`` when the index is past the last step (or negative)."""
        if 0 <= self.current_step < len(self.steps):
            return self.steps[self.current_step]
        return None

    def transition(self, to: TaskStatus | str, reason: str = "", *, now: datetime | None = None) -> Transition:
        """Move the task to another status in memory and record the move (the caller persists the task).

        Args:
            to: The new status.
            reason: Why, for the audit trail.
            now: The aware time to record (default: now in UTC).

        Returns:
            The appended :class:`Transition`.

        Raises:
            InvalidTransitionError: The state machine does not allow the move; the task is unchanged.
            ValueError: ``now`` is naive; the task is unchanged.
        """
        check_transition(self.id, self.status, to)
        target = TaskStatus(to)
        # Built (and validated) before any change, so a bad `now` leaves the task untouched.
        record = Transition(
            from_status=self.status, to_status=target, timestamp=utcnow() if now is None else now, reason=reason
        )
        self.transitions.append(record)
        self.status = target
        self.updated_at = record.timestamp
        if target in TERMINAL_STATUSES:
            self.completed_at = record.timestamp
        return record

    def _go_exclude(self) -> dict[str, Any]:
        spec = super()._go_exclude()
        if self._key_style == "go":
            spec["model"] = True  # Go has no top-level model; it lives in config.model
        return spec

    def _go_target(self) -> tuple[_GoModel, bool]:
        if self._key_style != "go":
            return self, False
        if self.model and self.config.model != self.model:
            config = self.config.model_copy(update={"model": self.model})
            return self.model_copy(update={"config": config}), True
        return self, True


def _uses_go_keys(data: dict[str, Any]) -> bool:
    return ("workspace_id" in data and "workspace_name" not in data) or (
        "template_id" in data and "template" not in data
    )


class TaskRef(_GoModel):
    """A workspace's summary entry for one of its tasks."""

    _omit_empty = frozenset({"started_at", "completed_at"})

    id: str = ""
    status: TaskStatusValue = ""
    started_at: OptionalTimestamp = None
    completed_at: OptionalTimestamp = None


class Workspace(_GoModel):
    """A workspace (``workspace.json``): a git worktree and branch with its tasks.

    Unlike the task document, ``schema_version`` is an int, as in the Go ATLAS.
    """

    _omit_empty = frozenset({"repo_path", "metadata"})

    name: str = ""
    path: str = ""
    worktree_path: str = ""
    branch: str = ""
    status: WorkspaceStatus = WorkspaceStatus.ACTIVE
    tasks: Annotated[list[TaskRef], _NullList] = Field(default_factory=list)
    created_at: Timestamp = None
    updated_at: Timestamp = None
    repo_path: str = ""
    metadata: Annotated[dict[str, Any], _NullDict, _GoMap] = Field(default_factory=dict)
    schema_version: int = 1


__all__ = [
    "GO_ZERO_TIME",
    "ApprovalOption",
    "Duration",
    "KeyStyle",
    "NanoDuration",
    "NanoTime",
    "OptionalTimestamp",
    "Step",
    "StepResult",
    "StepStatus",
    "StepStatusValue",
    "StepType",
    "StepTypeValue",
    "Task",
    "TaskConfig",
    "TaskRef",
    "TaskStatus",
    "TaskStatusValue",
    "Timestamp",
    "Transition",
    "Workspace",
    "WorkspaceStatus",
    "format_duration",
    "format_time",
    "parse_duration",
    "parse_time",
    "utcnow",
]
