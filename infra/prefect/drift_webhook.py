"""Route honing's drift event to a webhook: a Prefect Webhook block holding the URL, and an
automation that calls it on every ``honing.drift.detected`` event (the monitoring flow emits
it with the model, the champion's version, the batch and the reasons).

Run it once against the Prefect server the deployments use (``PREFECT_API_URL`` set):

    python infra/prefect/drift_webhook.py --url https://hooks.example.com/honing

The URL is stored in the block as a secret, never on a command line of a running service.
Read it from a file with ``--url-file`` to keep it out of the shell history too. Running the
script again replaces the automation and the block of the same name.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from prefect.automations import Automation
from prefect.blocks.webhook import Webhook
from prefect.events.actions import CallWebhook
from prefect.events.schemas.automations import EventTrigger, Posture

EVENT = "honing.drift.detected"
PAYLOAD = (
    '{"event": "{{ event.event }}", "model": "{{ event.resource.id }}", '
    '"version": "{{ event.payload.version }}", "batch": "{{ event.payload.batch }}", '
    '"reasons": {{ event.payload.reasons | tojson }}, "at": "{{ event.occurred }}"}'
)


async def route(url: str, name: str) -> Automation:
    block_id = await Webhook(url=url, method="POST").save(name, overwrite=True)
    try:
        old = await Automation.aread(name=name)
        await old.adelete()
    except ValueError:  # none yet
        pass
    return await Automation(
        name=name,
        description=f"POST every {EVENT} event to the {name!r} webhook block",
        trigger=EventTrigger(
            expect={EVENT},
            match={"prefect.resource.id": "honing.model.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),  # fmt: skip
        actions=[CallWebhook(block_document_id=block_id, payload=PAYLOAD)],
    ).acreate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--url", help="The webhook's URL.")
    group.add_argument("--url-file", type=Path, help="A file holding the URL.")
    parser.add_argument("--name", default="honing-drift-webhook")
    args = parser.parse_args()
    url = args.url or args.url_file.read_text(encoding="utf-8").strip()
    automation = asyncio.run(route(url, args.name))
    print(f"automation {automation.name!r} ({automation.id}): {EVENT} -> webhook block")


if __name__ == "__main__":
    main()
