"""The event operation kinds: deploy and archive of an event, and of one VM of it.

The event's operation (`deploy.deploy_event`, `archive.archive_event`) runs one child
operation per VM (`batch`: in this process, or spread over the workers of a shared
queue); a failed deploy or archive leaves the event `failed` (`outcome.mark_failed`).
"""

from __future__ import annotations

from openvle_core.events.archive import archive_event, archive_vm
from openvle_core.events.batch import in_event_limits
from openvle_core.events.deploy import deploy_event, deploy_vm
from openvle_core.events.outcome import mark_failed
from openvle_core.operations.kinds import Kinds, KindSpec, OperationKind
from openvle_core.vms.power import refresh_status
from openvle_core.vms.provision import clone_failed

KINDS: Kinds = {
    OperationKind.EVENT_DEPLOY: KindSpec(deploy_event, on_failure=mark_failed),
    OperationKind.EVENT_VM_DEPLOY: KindSpec(in_event_limits(deploy_vm), on_failure=clone_failed),
    OperationKind.EVENT_ARCHIVE: KindSpec(archive_event, on_failure=mark_failed),
    OperationKind.EVENT_VM_ARCHIVE: KindSpec(archive_vm, on_failure=refresh_status),
}
