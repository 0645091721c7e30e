"""Every operation kind and its handler, in one explicit list, and the runner built on it.

The worker, the embedded API and the CLI hand `run_operation` to `open_runtime`; what
handles a kind is read here, nowhere else.
"""

from __future__ import annotations

from openvle_core.events.tasks import KINDS as EVENT_KINDS
from openvle_core.operations.kinds import join_kinds
from openvle_core.operations.runner import OperationRunner
from openvle_core.sync.tasks import KINDS as SYNC_KINDS
from openvle_core.templates.tasks import KINDS as TEMPLATE_KINDS
from openvle_core.vms.tasks import KINDS as VM_KINDS

KINDS = join_kinds(VM_KINDS, TEMPLATE_KINDS, EVENT_KINDS, SYNC_KINDS)
run_operation = OperationRunner(KINDS)
