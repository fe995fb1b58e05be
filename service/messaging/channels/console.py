"""Development channel: prints each message to the terminal, clearly marked, instead of sending it."""

import sys
import uuid

from service.messaging.channels import Outgoing


class ConsoleChannel:
    def __init__(self, label: str, stream=None):
        self.label = label
        self.sender = f"console-{label.lower()}"
        self.stream = stream or sys.stdout

    async def send(self, message: Outgoing) -> str:
        lines = [f"===== {self.label} (console, not sent) to {message.to} ====="]
        if message.subject:
            lines.append(f"Subject: {message.subject}")
        lines.append(message.body)
        lines.extend(f"[attachment: {a.filename}]" for a in message.attachments)
        lines.append("=" * 40)
        print("\n".join(lines), file=self.stream, flush=True)
        return f"console-{uuid.uuid4().hex}"

    async def close(self) -> None:
        pass
