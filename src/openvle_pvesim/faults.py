"""Fault injection for the simulator, deterministic under a random seed.

A spec is a `;`-separated list of rules, each `KIND[=ARG][:p=F][:n=N][:TARGET][:msg=TEXT]`:

- HTTP kinds (TARGET is `[METHOD ]PATH-GLOB`, matched against the schema template and the
  request path; default `*`): `status=500|502|595|596` replies with that status and a
  realistic reason, `hang` never answers, `reset` closes the connection without a reply.
- Domain kinds, consumed by the model through `take(kind, target)`: `task_fail=TASKTYPE`,
  `lock_timeout=TASKTYPE`, `nextid_collision`, `agent_not_running[=VMID]` (ARG is the
  target, a glob; default `*`).
- `vmid_takeover[=VMID]`: another client takes vmid N. Right before a read of VM N's
  config or status (`takeover.take_vmid`), an admin removes VM N by hand (HA resource, stop,
  destroy with purge) and a colleague creates a new VM that /cluster/nextid handed the
  same id, in the same pool on the same node, and starts it: a new vmgenid, smbios1
  uuid, MAC and `meta` ctime, no SMBIOS serial, named `msg=` (`{name}` is the removed
  VM's name, so `msg={name}` gives it ours; default `teacher-golden-image-{vmid}`).
  Templates, locked VMs and a vmid taken before are never taken; `takeovers` keeps each
  new VM's config.

`p=F` fires with probability F, `n=N` at most N times (the first N matches when no `p`);
without either a rule always fires. `msg=TEXT` (last, may contain `:`) overrides the
message. Each rule draws from its own RNG seeded from (random seed, rule index).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

HTTP_KINDS = frozenset({"status", "hang", "reset"})
DOMAIN_KINDS = frozenset(
    {"task_fail", "lock_timeout", "nextid_collision", "agent_not_running", "vmid_takeover"}
)
STATUS_REASONS = {
    500: "got timeout",
    502: "Bad Gateway",
    595: "Errors during connection establishment, proxy handshake: Connection refused",
    596: "Connection timed out",
}


class DomainFaults(Protocol):
    """Faults the model asks about (implemented by `faults.FaultInjector`).

    `take(kind, target)` returns None when no fault fires, else the message to use
    ("" means the model's default message for that fault). Kinds and targets:
    - "task_fail", target = task type ("qmclone", "qmstart", ...): the task ends in error;
    - "lock_timeout", target = task type: the task fails with a `can't lock file` timeout;
    - "nextid_collision", target = "": /cluster/nextid hands out an id another clone takes;
    - "agent_not_running", target = str(vmid): the guest agent does not answer;
    - "vmid_takeover", target = str(vmid): another client takes the vmid (see takeover.py).
    Counts and probabilities are the injector's business; it is deterministic under a seed.
    """

    def take(self, kind: str, target: str) -> str | None: ...


@dataclass
class FaultRule:
    """One parsed rule and how often it has fired."""

    kind: str
    target: str = "*"
    method: str | None = None
    status: int | None = None
    probability: float | None = None
    count: int | None = None
    message: str | None = None
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def label(self) -> str:
        arg = f"={self.status}" if self.status else ""
        where = f"{self.method} {self.target}" if self.method else self.target
        return f"{self.kind}{arg}:{where}"

    def matches(self, method: str | None, *names: str) -> bool:
        if self.method and method != self.method:
            return False
        return any(fnmatchcase(name, self.target) for name in names)

    def fire(self) -> bool:
        """Decide (and count) whether this matching rule fires now."""
        if self.count is not None and self.fired >= self.count:
            return False
        if self.probability is not None and self.rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class HttpFault:
    """What the server does instead of answering: `status` reply, `hang` or `reset`."""

    kind: str
    status: int = 0
    reason: str = ""


def parse_rule(text: str) -> FaultRule:
    """Parse one rule of the spec grammar (see the module docstring)."""
    head, _, rest = text.strip().partition(":")
    kind, _, arg = head.strip().partition("=")
    kind = kind.strip()
    if kind not in HTTP_KINDS | DOMAIN_KINDS:
        raise ValueError(f"unknown fault kind {kind!r} in {text!r}")
    rule = FaultRule(kind=kind)
    if kind == "status":
        rule.status = int(arg)
        if rule.status not in STATUS_REASONS:
            raise ValueError(f"status must be one of {sorted(STATUS_REASONS)}: {text!r}")
    elif kind in DOMAIN_KINDS and arg:
        rule.target = arg.strip()
    while rest:
        part, _, rest = rest.partition(":")
        part = part.strip()
        if part.startswith("msg="):
            rule.message = (part[4:] + (":" + rest if rest else "")).strip()
            break
        if part.startswith("p="):
            rule.probability = float(part[2:])
        elif part.startswith("n="):
            rule.count = int(part[2:])
        elif part and kind in HTTP_KINDS:
            method, _, path = part.rpartition(" ")
            rule.method = method.strip().upper() or None
            rule.target = path.strip()
        elif part:
            raise ValueError(f"unexpected field {part!r} in fault rule {text!r}")
    return rule


class FaultInjector:
    """All fault rules of one simulator; implements `DomainFaults`."""

    def __init__(self, spec: str = "", random_seed: int = 0) -> None:
        self.random_seed = random_seed
        self.rules: list[FaultRule] = []
        self.fired: Counter[str] = Counter()
        self.takeovers: dict[int, dict[str, Any]] = {}  # vmid -> the new VM's config
        for text in spec.split(";"):
            if text.strip():
                self.add_rule(parse_rule(text))

    def add_rule(self, rule: FaultRule) -> FaultRule:
        rule.rng = random.Random(f"{self.random_seed}:{len(self.rules)}")
        self.rules.append(rule)
        return rule

    def add(
        self,
        kind: str,
        target: str = "*",
        *,
        method: str | None = None,
        status: int | None = None,
        p: float | None = None,
        n: int | None = None,
        message: str | None = None,
    ) -> FaultRule:
        """Add a rule programmatically (tests); same meaning as the textual fields."""
        text = f"{kind}={status}" if status is not None else kind
        rule = parse_rule(text)
        rule.target, rule.method = target, method.upper() if method else None
        rule.probability, rule.count, rule.message = p, n, message
        return self.add_rule(rule)

    def clear(self) -> None:
        """Remove every rule and reset the counters."""
        self.rules.clear()
        self.fired.clear()

    def http_fault(self, method: str, template: str | None, path: str) -> HttpFault | None:
        """The HTTP-level fault for this request, if a rule fires."""
        names = (template, path) if template else (path,)
        for rule in self.rules:
            if rule.kind in HTTP_KINDS and rule.matches(method, *names) and rule.fire():
                self.fired[rule.kind] += 1
                if rule.kind == "status":
                    status = rule.status or 500
                    return HttpFault("status", status, rule.message or STATUS_REASONS[status])
                return HttpFault(rule.kind)
        return None

    def take(self, kind: str, target: str) -> str | None:
        """DomainFaults.take: None, or the message to use ("" = the model's default)."""
        for rule in self.rules:
            if rule.kind == kind and rule.matches(None, target) and rule.fire():
                self.fired[kind] += 1
                return rule.message or ""
        return None

    def counts(self) -> dict[str, int]:
        """How often each rule fired, by label."""
        return {rule.label: rule.fired for rule in self.rules}
